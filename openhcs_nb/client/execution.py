"""The handle of one remote execution: a future of its per-well table.

The I/O thread feeds an :class:`Execution` with events in seq order, each
exactly once (``_streams`` sees to that); this class keeps what they say and
wakes whoever waits:

- blocking waiters (``wait``, ``result``, ``for well in execution``),
- ``async for`` iterators, woken with ``loop.call_soon_threadsafe`` so the
  event loop itself never blocks,
- callbacks (``on_well``, ``add_done_callback``), run on the connection's
  callback thread in arrival order, never on the I/O thread. A callback
  registered late is first replayed the wells already seen, so it sees every
  well exactly once.

A well reported twice (a restarted server re-running it) counts once: the
first report wins.

Memory: every well's record (summary, status, error) is kept, but its preview
images only while they fit the connection's preview budget
(:class:`~openhcs_nb.client._preview_cache.PreviewCache`, shared by all its
executions, newest wells kept). Callbacks always get the images as they
arrive; records read later (``wells``, iteration, a late ``on_well``) carry
them only while kept, else ``previews_dropped`` is set and
:meth:`Execution.previews` fetches the stored ones from the server again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from openhcs_nb.client._preview_cache import PreviewCache
from openhcs_nb.client._wells import (
    FINAL_STATES,
    WellEvent,
    state_name,
    well_event,
    with_previews,
    without_previews,
)
from openhcs_nb.client.errors import (
    ConnectionClosed,
    RemoteError,
    RemoteExecutionError,
)
from openhcs_nb.protocol import (
    Event,
    ExecutionInfo,
    Finished,
    Progress,
    Queued,
    Started,
    WellDone,
    WellFailed,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from openhcs_nb.client._dispatch import CallbackThread
    from openhcs_nb.client.connection import Connection

log = logging.getLogger("openhcs_nb.client")

WellCallback = Callable[[WellEvent], Any]
DoneCallback = Callable[["Execution"], Any]


class Execution:
    """A running or finished execution on the server; behaves like a future."""

    def __init__(
        self,
        connection: Connection,
        execution_id: str,
        plate: str,
        *,
        dispatcher: CallbackThread,
        wells: Sequence[str] = (),
        state: str = "queued",
        total: int = 0,
        label: str = "",
        previews: PreviewCache[tuple[str, str]] | None = None,
    ) -> None:
        """``previews`` is where well images are kept, keyed ``(id, well)``.

        A connection passes its own cache, so one budget bounds all its
        executions; without one the execution gets a default-sized cache.
        """
        self.id = execution_id
        self.plate = plate
        self.label = label
        self.requested_wells: tuple[str, ...] = tuple(wells)
        self._connection = connection
        self._dispatcher = dispatcher
        self._cond = threading.Condition()
        self._state = state_name(state)
        self._total = total or len(self.requested_wells)
        self._previews: PreviewCache[tuple[str, str]] = (
            PreviewCache() if previews is None else previews
        )
        # Records without their images (those live in ``_previews``).
        self._events: list[WellEvent] = []
        self._by_well: dict[str, WellEvent] = {}
        self._error: str | None = None
        self._finished = False
        self._stream_error: RemoteError | None = None
        self._detached = False
        self._well_callbacks: list[WellCallback] = []
        self._done_callbacks: list[DoneCallback] = []
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._phase: tuple[str, int, int] | None = None

    # --- what is known --------------------------------------------------------

    @property
    def state(self) -> str:
        """``queued``, ``running``, ``done``, ``failed`` or ``cancelled``."""
        return self._state

    @property
    def error(self) -> str | None:
        """Why the execution failed as a whole (None when it did not)."""
        return self._error

    @property
    def progress(self) -> tuple[int, int, int]:
        """``(done, failed, total)`` wells so far."""
        with self._cond:
            failed = sum(1 for e in self._events if not e.ok)
            return len(self._events) - failed, failed, self._total

    @property
    def phase(self) -> tuple[str, int, int] | None:
        """The plate-level phase seen last, ``(name, wells done, total)``.

        ``("illumination", 24, 24)`` once a flat-field fit has read every
        well; None for a pipeline without a plate-level phase.
        """
        with self._cond:
            return self._phase

    @property
    def wells(self) -> dict[str, WellEvent]:
        """Every well reported so far, in arrival order.

        Images are attached while the preview budget keeps them; otherwise a
        record has ``previews_dropped`` set (see :meth:`previews`).
        """
        with self._cond:
            records = list(self._by_well.values())
        return {record.well: self._hydrated(record) for record in records}

    @property
    def failed_wells(self) -> dict[str, str]:
        """``{well: error and remote traceback}`` of the wells that failed."""
        with self._cond:
            return {
                e.well: f"{e.error}\n{e.traceback}" if e.traceback else str(e.error)
                for e in self._events
                if not e.ok
            }

    def previews(
        self, well: str, timeout: float | None = None
    ) -> dict[str, np.ndarray]:
        """The preview images the server streamed for ``well`` (writable arrays).

        Kept previews return at once. Previews the client dropped to stay
        within its preview budget are fetched again from the server, exactly
        as they were streamed (the server stores every event), and kept again
        as the newest; that waits up to ``timeout`` seconds. A failed well,
        or one streamed without images, gives ``{}``.

        Raises
        ------
        KeyError
            No result for ``well`` has arrived (yet).
        RemoteError
            The previews were dropped and fetching them again failed (the
            server did not answer, or no longer has the execution). The
            execution and connection carry on.
        ConnectionClosed
            The previews were dropped and the connection is closed.
        """
        with self._cond:
            record = self._by_well.get(well)
        if record is None:
            raise KeyError(f"execution {self.id} has no result for well {well!r}")
        kept = self._previews.get((self.id, well))
        if kept is not None or not record.previews_dropped:
            return kept or {}
        images = self._connection._fetch_images(
            self.id, record.seq, timeout, full_resolution=False
        )
        self._previews.put((self.id, well), images)
        return dict(images)

    def show_napari(self, viewer: Any = None) -> Any:
        """Open napari and add each well's images and labels as they arrive.

        Needs the ``napari`` extra and a display; without one the error points
        to the inline viewer. (The import is deferred: the client does not
        otherwise depend on the Jupyter layer.)
        """
        from openhcs_nb.jupyter.napari_view import show_napari

        return show_napari(self, viewer)

    def fetch_full(self, well: str, timeout: float | None = None) -> dict[str, Any]:
        """Full-resolution images of ``well``, fetched from the server now.

        Raises
        ------
        KeyError
            No result for ``well`` has arrived (yet).
        RemoteError
            The server refused or did not answer.
        """
        with self._cond:
            if well not in self._by_well:
                raise KeyError(f"execution {self.id} has no result for well {well!r}")
            seq = self._by_well[well].seq
        return self._connection._fetch_images(self.id, seq, timeout)

    # --- future-like ----------------------------------------------------------

    def done(self) -> bool:
        """Whether the execution has ended (or can no longer be followed)."""
        return self._finished or self._stream_error is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the execution ends; False on timeout or closed connection."""
        with self._cond:
            self._cond.wait_for(self._settled, timeout)
            return self.done()

    def result(self, timeout: float | None = None) -> pd.DataFrame:
        """The per-well table once the execution has ended.

        Failed wells are rows with status ``"failed"`` and their ``error``; a
        cancelled run gives the wells finished before the cancel.

        Raises
        ------
        TimeoutError
            Still running after ``timeout`` seconds.
        RemoteExecutionError
            The execution failed as a whole (e.g. its plate became unreadable).
        ConnectionClosed
            The connection closed first; ``attach`` from a new one.
        RemoteError
            The server stopped answering for this execution (e.g. unknown id).
        """
        if not self.wait(timeout):
            if self._detached:
                raise ConnectionClosed(
                    f"the connection closed before execution {self.id} ended; "
                    f"use connect(...).attach({self.id!r})"
                )
            raise TimeoutError(
                f"execution {self.id} is still {self.state} after {timeout} s "
                f"({self._progress_text()})"
            )
        if self._stream_error is not None:
            raise self._stream_error
        if self._state == "failed":
            raise RemoteExecutionError(
                f"execution {self.id} on {self.plate} failed: "
                f"{self._error or 'no reason given'}",
                details={"execution_id": self.id},
            )
        return self.table()

    def table(self) -> pd.DataFrame:
        """The per-well table of the wells reported so far, sorted by well.

        Its columns are those of ``run_local(...).wells``.
        """
        from openhcs_nb.plates.model import split_well
        from openhcs_nb.results.store import wells_frame

        rows = []
        for event in sorted(self.wells.values(), key=lambda e: e.well):
            row, column = split_well(event.well)
            base = {"well": event.well, "row": row, "column": column}
            if event.ok:
                rows.append({**base, "status": "done", "error": None, **event.summary})
            else:
                rows.append({**base, "status": "failed", "error": event.error})
        return wells_frame(rows)

    def cancel(self, timeout: float | None = None) -> bool:
        """Ask the server to cancel; True when the execution is now cancelled.

        Raises
        ------
        RemoteError
            The server refused or did not answer.
        """
        state = state_name(self._connection.cancel(self.id, timeout=timeout))
        return state == "cancelled"

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(execution)`` on the callback thread once it has ended."""
        with self._cond:
            if not self.done():
                self._done_callbacks.append(fn)
                return
        self._dispatcher.put(lambda: fn(self))

    def on_well(self, callback: WellCallback) -> WellCallback:
        """Call ``callback(well_event)`` for every well, exactly once, in order.

        Wells already seen are replayed first. Callbacks run on the
        connection's callback thread; keep them quick. Returns ``callback``,
        so this works as a decorator.
        """
        with self._cond:
            seen = [self._hydrated(record) for record in self._events]
            self._well_callbacks.append(callback)
            if seen:
                self._dispatcher.put(lambda: _call_each([callback], seen))
        return callback

    def __iter__(self) -> Iterator[WellEvent]:
        """Yield every well (those already seen first), blocking until the end."""
        index = 0
        while True:
            with self._cond:
                self._cond.wait_for(self._more_than(index))
                if index >= len(self._events):
                    self._raise_if_cut_off()
                    return
                event = self._events[index]
            index += 1
            yield self._hydrated(event)

    def __aiter__(self) -> AsyncIterator[WellEvent]:
        """``async for well in execution``: never blocks the event loop."""
        return self._async_wells()

    async def _async_wells(self) -> AsyncIterator[WellEvent]:
        loop = asyncio.get_running_loop()
        index = 0
        while True:
            wake = asyncio.Event()
            with self._cond:
                ready = index < len(self._events)
                event = self._events[index] if ready else None
                ended = not ready and self._settled()
                if not ready and not ended:
                    self._waiters.append((loop, wake))
            if event is not None:
                index += 1
                yield self._hydrated(event)
            elif ended:
                self._raise_if_cut_off()
                return
            else:
                await wake.wait()

    # --- fed by the I/O thread --------------------------------------------------

    def _apply(self, event: Event, buffers: Sequence[Any]) -> None:
        """Take one event, in seq order; called once per event."""
        record = (
            well_event(event, buffers)
            if isinstance(event, (WellDone, WellFailed))
            else None
        )
        with self._cond:
            if self._finished:
                return
            if isinstance(event, Queued):
                self._state = "queued"
            elif isinstance(event, Started):
                self._state, self._total = "running", event.total or self._total
            elif isinstance(event, Progress) and event.phase:
                self._phase = (event.phase, event.done, event.total)
            elif isinstance(event, Progress):
                self._total = event.total or self._total
            elif isinstance(event, Finished):
                self._end(state_name(event.state), event.error, event.total)
            elif record is not None and record.well not in self._by_well:
                kept = without_previews(record)
                self._events.append(kept)
                self._by_well[record.well] = kept
                self._previews.put((self.id, record.well), record.previews)
                if self._well_callbacks:
                    callbacks = list(self._well_callbacks)
                    self._dispatcher.put(lambda: _call_each(callbacks, [record]))
            self._notify()

    def _finish_from_info(self, info: ExecutionInfo) -> None:
        """End from a Status record (the server sent no Finished event)."""
        with self._cond:
            if not self._finished:
                self._end(state_name(info.state), info.error, info.total)
                self._notify()

    def _finish_from_state(self, state: str) -> None:
        """End with only the state a fetch reply named."""
        with self._cond:
            if not self._finished:
                self._end(state_name(state) or "failed", None, 0)
                self._notify()

    def _stream_failed(self, error: RemoteError) -> None:
        """The server will not give this execution's events (e.g. unknown id)."""
        with self._cond:
            if not self.done():
                self._stream_error = error
                self._run_done_callbacks()
                self._notify()

    def _detach(self) -> None:
        """The connection closed: wake everyone; the execution goes on remotely."""
        with self._cond:
            self._detached = True
            self._notify()

    def _end(self, state: str, error: str | None, total: int) -> None:
        self._state = state if state in FINAL_STATES else "failed"
        self._error = error
        self._total = total or self._total
        self._finished = True
        self._run_done_callbacks()

    def _run_done_callbacks(self) -> None:
        callbacks, self._done_callbacks = self._done_callbacks, []
        for fn in callbacks:
            self._dispatcher.put(lambda fn=fn: fn(self))

    def _notify(self) -> None:
        """Wake blocking waiters and async iterators (called holding the lock)."""
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, wake in waiters:
            with contextlib.suppress(RuntimeError):  # that event loop is closed
                loop.call_soon_threadsafe(wake.set)

    def _hydrated(self, record: WellEvent) -> WellEvent:
        """``record`` with its kept images, or as kept (``previews_dropped``)."""
        if not record.previews_dropped:
            return record
        kept = self._previews.get((self.id, record.well))
        return record if kept is None else with_previews(record, kept)

    def _more_than(self, index: int) -> Callable[[], bool]:
        return lambda: index < len(self._events) or self._settled()

    def _settled(self) -> bool:
        return self.done() or self._detached

    def _raise_if_cut_off(self) -> None:
        if self._stream_error is not None:
            raise self._stream_error
        if self._detached and not self._finished:
            raise ConnectionClosed(
                f"the connection closed before execution {self.id} ended"
            )

    # --- display ----------------------------------------------------------------

    def _progress_text(self) -> str:
        done, failed, total = self.progress
        return f"{done}/{total} done, {failed} failed"

    def __repr__(self) -> str:
        return (
            f"<Execution {self.id} on {self.plate!r}: {self._state}, "
            f"{self._progress_text()}>"
        )

    def _ipython_display_(self) -> None:
        """In a notebook with widgets, a live progress panel; else the HTML snapshot.

        The panel updates from the client's stream through a single writer on
        the kernel's event loop (as dask's progress bars do), so displaying a
        run never blocks the kernel.
        """
        from IPython.display import HTML, display

        try:
            from openhcs_nb.jupyter.run_panel import RunPanel
        except ImportError:  # no ipywidgets: the static snapshot will do
            display(HTML(self._repr_html_()))
            return
        display(RunPanel(self))

    def _repr_html_(self) -> str:
        from openhcs_nb.client._html import execution_html

        done, failed, total = self.progress
        return execution_html(
            self.id, self.plate, self._state, done, failed, total, self._error
        )


def _call_each(callbacks: Sequence[WellCallback], events: Sequence[WellEvent]) -> None:
    """Run callbacks on events in order; one failing does not stop the others."""
    for event in events:
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("on_well callback failed for well %s", event.well)
