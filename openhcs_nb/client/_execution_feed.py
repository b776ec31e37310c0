"""The I/O thread's side of an execution handle: take events, wake waiters.

:class:`~openhcs_nb.client.execution.Execution` is what users hold; its base
:class:`ExecutionFeed` is what the stream layer (``_streams``) and the
heartbeat (``_heartbeat``) call. Kept apart because the rules differ:

- every method here runs on the I/O thread, takes the handle's lock briefly
  and never blocks or runs user code: callbacks are handed to the
  connection's callback thread (``_dispatch``) in arrival order;
- each event arrives once, in seq order; its meaning is applied by
  :class:`~openhcs_nb.client._run_state.RunState`;
- every change wakes blocking waiters (``threading.Condition``) and ``async
  for`` iterators (``loop.call_soon_threadsafe``), so nobody polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from openhcs_nb.client._preview_cache import PreviewCache
from openhcs_nb.client._run_state import RunState
from openhcs_nb.client._wells import (
    WellEvent,
    state_name,
    well_event,
    with_previews,
    without_previews,
)
from openhcs_nb.client.errors import ConnectionClosed, RemoteError, ServerLost
from openhcs_nb.protocol import Event, ExecutionInfo, WellDone, WellFailed

if TYPE_CHECKING:
    from openhcs_nb.client._dispatch import CallbackThread
    from openhcs_nb.client.connection import Connection

log = logging.getLogger("openhcs_nb.client")

T = TypeVar("T")
WellCallback = Callable[[WellEvent], Any]
StartedCallback = Callable[[str], Any]
DoneCallback = Callable[[Any], Any]


class ExecutionFeed:
    """State shared by the handle and the I/O thread, behind one lock."""

    def __init__(
        self,
        connection: Connection,
        execution_id: str,
        *,
        dispatcher: CallbackThread,
        run: RunState,
        previews: PreviewCache[tuple[str, str]] | None,
    ) -> None:
        self.id = execution_id
        self._connection = connection
        self._dispatcher = dispatcher
        self._cond = threading.Condition()
        # Its records are kept without their images (those live in _previews).
        self._run = run
        self._previews: PreviewCache[tuple[str, str]] = (
            PreviewCache() if previews is None else previews
        )
        self._stream_error: RemoteError | None = None
        self._detached = False
        self._well_callbacks: list[WellCallback] = []
        self._started_callbacks: list[StartedCallback] = []
        self._done_callbacks: list[DoneCallback] = []
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def done(self) -> bool:
        """Whether the execution has ended (or can no longer be followed)."""
        return self._run.finished or self._stream_error is not None

    @property
    def server_lost(self) -> bool:
        """Whether this handle ended because the server stopped answering."""
        return self._run.lost

    # --- called on the I/O thread ----------------------------------------------

    def _apply(self, event: Event, buffers: Sequence[Any]) -> None:
        """Take one event, in seq order; called once per event."""
        record = (
            well_event(event, buffers)
            if isinstance(event, (WellDone, WellFailed))
            else None
        )
        with self._cond:
            was_finished = self._run.finished
            applied = self._run.apply(
                event, None if record is None else without_previews(record)
            )
            if applied.well is not None and record is not None:
                self._previews.put((self.id, record.well), record.previews)
                if self._well_callbacks:
                    callbacks = list(self._well_callbacks)
                    self._dispatcher.put(lambda: _call_each(callbacks, [record]))
            if applied.started is not None and self._started_callbacks:
                started = list(self._started_callbacks)
                well = applied.started
                self._dispatcher.put(lambda: _call_each(started, [well]))
            if self._run.finished and not was_finished:
                self._run_done_callbacks()
            self._notify()

    def _finish_from_info(self, info: ExecutionInfo) -> None:
        """End from a Status record (the server sent no Finished event)."""
        self._finish(state_name(info.state), info.error, info.total)

    def _finish_from_state(self, state: str) -> None:
        """End with only the state a fetch reply named."""
        self._finish(state_name(state) or "failed", None, 0)

    def _stream_failed(self, error: RemoteError) -> None:
        """The server will not give this execution's events (e.g. unknown id)."""
        with self._cond:
            if not self.done():
                if isinstance(error, ServerLost):
                    self._run.lose()
                self._stream_error = error
                self._run_done_callbacks()
                self._notify()

    def _detach(self) -> None:
        """The connection closed: wake everyone; the execution goes on remotely."""
        with self._cond:
            self._detached = True
            self._notify()

    # --- helpers (hold the lock where noted) -----------------------------------

    def _finish(self, state: str, error: str | None, total: int) -> None:
        with self._cond:
            if not self._run.ended:
                self._run.end(state, error, total)
                self._run_done_callbacks()
                self._notify()

    def _run_done_callbacks(self) -> None:
        """Queue the done callbacks (called holding the lock)."""
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
        return lambda: index < len(self._run.events) or self._settled()

    def _settled(self) -> bool:
        return self.done() or self._detached

    def _raise_if_cut_off(self) -> None:
        if self._stream_error is not None:
            raise self._stream_error
        if self._detached and not self._run.finished:
            raise ConnectionClosed(
                f"the connection closed before execution {self.id} ended"
            )


def _call_each(callbacks: Sequence[Callable[[T], Any]], items: Sequence[T]) -> None:
    """Run callbacks on items in order; one failing does not stop the others."""
    for item in items:
        for callback in callbacks:
            try:
                callback(item)
            except Exception:
                log.exception("execution callback failed on %r", item)
