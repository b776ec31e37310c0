"""The run panel: progress, counts, time left, cancel, and failed wells.

Like the plate viewer, the panel never changes a widget from the client's
callback thread: ``on_well``, ``on_well_started`` and ``add_done_callback``
only queue, and a :class:`~._writer.CoalescingWriter` applies the queue on
the kernel's loop. Cancel runs on a short-lived thread, because it waits for
the server.

The state line is the execution's own ``state``, read again on every event
(the plate viewer reads the same), so a run that is progressing never reads
"queued"; "server lost" shows the client's one-line hint. Until the run
ends, a tick every ``tick`` seconds reads it again too (a run's start or
progress has no callback) and counts the estimate down; traits that did not
change send nothing.
"""

from __future__ import annotations

import html
import ipaddress
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ipywidgets as widgets

from openhcs_nb.jupyter._panel_eta import format_left, seconds_left
from openhcs_nb.jupyter._writer import DEFAULT_INTERVAL, CoalescingWriter

_FINAL = frozenset({"done", "failed", "cancelled", "server lost"})


@dataclass(frozen=True)
class _Ended:
    state: str
    error: str | None


@dataclass(frozen=True)
class _Started:
    well: str


@dataclass(frozen=True)
class _Tick:
    """Read the execution's state again (no event says it started)."""


@dataclass(frozen=True)
class _CancelAnswer:
    cancelled: bool
    error: str | None


class RunPanel(widgets.VBox):
    """Progress of one execution: bar, counts, Cancel, failed wells.

    ``execution`` needs ``id``, ``plate``, ``progress`` (done, failed, total),
    ``on_well``, ``add_done_callback`` and ``cancel``; ``state``, ``error``,
    ``running_wells`` and ``on_well_started`` are used when present.
    ``clock`` (seconds, monotonic) times finished wells for the estimate;
    ``tick`` is how often the state is read again (None: only on events).
    """

    def __init__(
        self,
        execution: Any,
        *,
        interval: float = DEFAULT_INTERVAL,
        loop: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick: float | None = 1.0,
        dashboard_url: str | None = None,
    ) -> None:
        """``dashboard_url`` defaults to the Dask dashboard the server announced."""
        self.execution = execution
        self._clock = clock
        self._finished_at: list[float] = []
        self.title = widgets.HTML()
        self.bar = widgets.IntProgress(min=0, max=1, value=0, bar_style="info")
        self.counts = widgets.HTML()
        self.cancel_button = widgets.Button(
            description="Cancel", button_style="warning", icon="stop"
        )
        self.cancel_button.on_click(self._on_cancel)
        self.failures = widgets.Accordion()
        href = dashboard_href(dashboard_url or _announced_dashboard(execution))
        self.dashboard = widgets.HTML(
            f'<a href="{html.escape(href)}" target="_blank">Dask dashboard</a>'
            if href
            else ""
        )
        self._done: set[str] = set()
        self._failed: dict[str, tuple[str, str]] = {}
        self._state = str(getattr(execution, "state", "running"))
        self._ended = False
        self._error: str | None = None
        self._note = ""
        self._stop = threading.Event()
        super().__init__(
            [
                self.title,
                widgets.HBox([self.bar, self.counts, self.cancel_button]),
                self.dashboard,
                self.failures,
            ]
        )
        self._writer: CoalescingWriter[Any] = CoalescingWriter(
            self._apply, interval=interval, loop=loop
        )
        self._render()
        execution.on_well(self._writer.put)
        on_started = getattr(execution, "on_well_started", None)
        if callable(on_started):
            on_started(lambda well: self._writer.put(_Started(str(well))))
        execution.add_done_callback(
            lambda ex: self._writer.put(
                _Ended(str(getattr(ex, "state", "done")), getattr(ex, "error", None))
            )
        )
        if tick is not None:
            threading.Thread(
                target=self._ticks,
                args=(tick,),
                name="openhcs-run-panel-tick",
                daemon=True,
            ).start()

    @property
    def done_wells(self) -> int:
        """Wells reported done so far (as shown)."""
        return len(self._done)

    @property
    def state(self) -> str:
        """The state line's state: the execution's own, or how it ended."""
        live = getattr(self.execution, "state", None)
        if isinstance(live, str) and live and (live in _FINAL or not self._ended):
            return live
        return self._state

    @property
    def time_left(self) -> float | None:
        """Seconds left by the rate wells finish at (None: too early to say)."""
        if self.state in _FINAL:
            return None
        total = int(self.execution.progress[2] or 0)
        return seconds_left(self._finished_at, total, self._clock())

    @property
    def failed_wells(self) -> dict[str, tuple[str, str]]:
        """``{well: (error, traceback)}`` as shown."""
        return dict(self._failed)

    def flush(self) -> int:
        """Apply queued updates now (scripts and tests); returns how many."""
        return self._writer.flush()

    def close(self) -> None:
        """Stop updating and close the widgets."""
        self._stop.set()
        self._writer.close()
        super().close()

    def _ticks(self, every: float) -> None:
        while not self._stop.wait(every):
            if self.state in _FINAL:
                return
            self._writer.put(_Tick())

    # --- cancel ----------------------------------------------------------------

    def _on_cancel(self, _button: Any) -> None:
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling..."
        threading.Thread(
            target=self._cancel, name="openhcs-run-panel-cancel", daemon=True
        ).start()

    def _cancel(self) -> None:
        try:
            cancelled = bool(self.execution.cancel())
        except Exception as exc:
            self._writer.put(_CancelAnswer(False, f"{type(exc).__name__}: {exc}"))
            return
        self._writer.put(_CancelAnswer(cancelled, None))

    # --- the single writer -----------------------------------------------------

    def _apply(self, items: list[Any]) -> None:
        new_failures: list[str] = []
        for item in items:
            if isinstance(item, _Ended):
                self._state, self._error = item.state, item.error
                self._ended = True
            elif isinstance(item, _Started | _Tick):
                continue  # the state line and running count are read below
            elif isinstance(item, _CancelAnswer):
                self._note = (
                    f"cancel failed: {item.error}"
                    if item.error
                    else ("" if item.cancelled else "the execution had already ended")
                )
                if item.error:
                    self.cancel_button.disabled = False
                    self.cancel_button.description = "Cancel"
            elif item.well in self._done or item.well in self._failed:
                continue  # the first report of a well wins
            elif item.status == "done":
                self._done.add(item.well)
                self._finished_at.append(self._clock())
            elif item.status in ("queued", "running"):
                continue  # not a result
            else:
                self._finished_at.append(self._clock())
                error = str(item.error or "failed")
                self._failed[item.well] = (error, str(item.traceback or ""))
                new_failures.append(item.well)
        self._render(new_failures)

    def _render(self, new_failures: Sequence[str] = ()) -> None:
        done, failed = len(self._done), len(self._failed)
        total = max(int(self.execution.progress[2] or 0), done + failed)
        state = self.state
        finished = state in _FINAL
        with self.bar.hold_sync():
            self.bar.max = max(total, 1)
            self.bar.value = done + failed
            self.bar.bar_style = (
                "danger"
                if failed or state in ("failed", "server lost")
                else "success"
                if finished
                else "info"
            )
        self.counts.value = " &middot; ".join(
            html.escape(part) for part in self._count_parts(done, failed, total)
        )
        error = self._error or (self._live_error() if finished else None)
        line = html.escape(state) + (f": {html.escape(error)}" if error else "")
        self.title.value = (
            f"<b>Execution {html.escape(str(self.execution.id))}</b> on "
            f"{html.escape(str(self.execution.plate))}: {line}"
        )
        if finished:
            self.cancel_button.disabled = True
            self.cancel_button.description = "Cancel"
        if new_failures:
            children = list(self.failures.children)
            titles = list(self.failures.titles)
            for well in new_failures:
                error, trace = self._failed[well]
                children.append(
                    widgets.HTML(f"<pre>{html.escape(trace or error)}</pre>")
                )
                titles.append(f"{well}: {error}")
            with self.failures.hold_sync():
                self.failures.children = children
                self.failures.titles = tuple(titles)

    def _count_parts(self, done: int, failed: int, total: int) -> list[str]:
        parts = [f"{done} done", f"{failed} failed", f"{total} wells"]
        state = self.state
        running = getattr(self.execution, "running_wells", None)
        if state == "cancelled" and total > done + failed:
            parts.append(f"{total - done - failed} cancelled")
        elif running and state not in _FINAL:
            parts.append(f"{len(running)} running")
        left = self.time_left
        if left is not None:
            parts.append(format_left(left))
        if self._note:
            parts.append(self._note)
        return parts

    def _live_error(self) -> str | None:
        error = getattr(self.execution, "error", None)
        return None if error is None else str(error)


def dashboard_href(url: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The Dask dashboard link as this notebook's browser can open it.

    Behind JupyterHub (``JUPYTERHUB_SERVICE_PREFIX`` set) the browser reaches
    the kernel's machine only through jupyter-server-proxy, so a dashboard on
    loopback becomes ``<prefix>proxy/<port><path>`` and one on another host
    ``<prefix>proxy/<host>:<port><path>`` (that host must be in the proxy's
    ``host_allowlist``). Without JupyterHub the link is the server's own.
    """
    if not url:
        return None
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX")
    parts = urlsplit(url)
    if not prefix or parts.port is None or parts.hostname is None:
        return url
    host = parts.hostname
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    target = str(parts.port) if local else f"{host}:{parts.port}"
    return f"{prefix.rstrip('/')}/proxy/{target}{parts.path or '/'}"


def _announced_dashboard(execution: Any) -> str | None:
    """The dashboard in the HelloReply of the execution's connection, if any."""
    connection = getattr(execution, "connection", None) or getattr(
        execution, "_connection", None
    )
    info = getattr(connection, "server_info", None)
    url = getattr(info, "dashboard_url", None)
    return url if isinstance(url, str) else None
