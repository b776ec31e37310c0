"""The run panel: progress, counts, cancel, and the errors of failed wells.

Like the plate viewer, the panel never changes a widget from the client's
callback thread: ``on_well`` and ``add_done_callback`` only queue, and a
:class:`~._writer.CoalescingWriter` applies the queue on the kernel's loop.
Cancel runs on a short-lived thread, because it waits for the server.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from openhcs_nb.jupyter._writer import DEFAULT_INTERVAL, CoalescingWriter

_FINAL = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class _Ended:
    state: str
    error: str | None


@dataclass(frozen=True)
class _CancelAnswer:
    cancelled: bool
    error: str | None


class RunPanel(widgets.VBox):
    """Progress of one execution: bar, counts, Cancel, failed wells.

    ``execution`` needs ``id``, ``plate``, ``progress`` (done, failed, total),
    ``on_well``, ``add_done_callback`` and ``cancel``.
    """

    def __init__(
        self,
        execution: Any,
        *,
        interval: float = DEFAULT_INTERVAL,
        loop: Any | None = None,
    ) -> None:
        self.execution = execution
        self.title = widgets.HTML()
        self.bar = widgets.IntProgress(min=0, max=1, value=0, bar_style="info")
        self.counts = widgets.HTML()
        self.cancel_button = widgets.Button(
            description="Cancel", button_style="warning", icon="stop"
        )
        self.cancel_button.on_click(self._on_cancel)
        self.failures = widgets.Accordion()
        self._done: set[str] = set()
        self._failed: dict[str, tuple[str, str]] = {}
        self._state = str(getattr(execution, "state", "running"))
        self._error: str | None = None
        self._note = ""
        super().__init__(
            [
                self.title,
                widgets.HBox([self.bar, self.counts, self.cancel_button]),
                self.failures,
            ]
        )
        self._writer: CoalescingWriter[Any] = CoalescingWriter(
            self._apply, interval=interval, loop=loop
        )
        self._render()
        execution.on_well(self._writer.put)
        execution.add_done_callback(
            lambda ex: self._writer.put(
                _Ended(str(getattr(ex, "state", "done")), getattr(ex, "error", None))
            )
        )

    @property
    def done_wells(self) -> int:
        """Wells reported done so far (as shown)."""
        return len(self._done)

    @property
    def failed_wells(self) -> dict[str, tuple[str, str]]:
        """``{well: (error, traceback)}`` as shown."""
        return dict(self._failed)

    def flush(self) -> int:
        """Apply queued updates now (scripts and tests); returns how many."""
        return self._writer.flush()

    def close(self) -> None:
        """Stop updating and close the widgets."""
        self._writer.close()
        super().close()

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
            else:
                error = str(item.error or "failed")
                self._failed[item.well] = (error, str(item.traceback or ""))
                new_failures.append(item.well)
        self._render(new_failures)

    def _render(self, new_failures: Sequence[str] = ()) -> None:
        done, failed = len(self._done), len(self._failed)
        total = max(int(self.execution.progress[2] or 0), done + failed)
        finished = self._state in _FINAL
        with self.bar.hold_sync():
            self.bar.max = max(total, 1)
            self.bar.value = done + failed
            self.bar.bar_style = (
                "danger"
                if failed or self._state == "failed"
                else "success"
                if finished
                else "info"
            )
        counts = f"{done} done &middot; {failed} failed &middot; {total} wells"
        if self._note:
            counts += f" &middot; {html.escape(self._note)}"
        self.counts.value = counts
        state = html.escape(self._state)
        if self._error:
            state += f": {html.escape(self._error)}"
        self.title.value = (
            f"<b>Execution {html.escape(str(self.execution.id))}</b> on "
            f"{html.escape(str(self.execution.plate))}: {state}"
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
