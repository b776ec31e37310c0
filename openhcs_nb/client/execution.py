"""The handle of one remote execution: a future of its per-well table.

The I/O thread feeds an :class:`Execution` with events in seq order, each
exactly once (``_streams`` sees to that); this class keeps what they say and
wakes whoever waits:

- blocking waiters (``wait``, ``result``, ``for well in execution``),
- ``async for`` iterators, woken with ``loop.call_soon_threadsafe`` so the
  event loop itself never blocks,
- callbacks (``on_well``, ``on_well_started``, ``add_done_callback``), run on
  the connection's callback thread in arrival order, never on the I/O thread.
  A callback registered late is first replayed what was already seen, so it
  sees every well exactly once.

What the events mean (states, running wells, first report wins) is kept in
:class:`~openhcs_nb.client._run_state.RunState`. A server that stops
answering ends the handle as ``"server lost"`` (``_heartbeat`` decides when);
``wait`` then returns and ``result`` raises
:class:`~openhcs_nb.client.errors.ServerLost` at once.

Display: ``_repr_html_`` is a static snapshot. The notebook layer registers a
live panel for this type with IPython (``openhcs_nb.jupyter._display``); the
client itself never imports it.

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
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from openhcs_nb.client import _objects, _tiles
from openhcs_nb.client._execution_feed import (
    DoneCallback,
    ExecutionFeed,
    StartedCallback,
    WellCallback,
    _call_each,
)
from openhcs_nb.client._run_state import RunState
from openhcs_nb.client._wells import WellEvent, state_name
from openhcs_nb.client.errors import ConnectionClosed, RemoteExecutionError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from openhcs_nb.client._dispatch import CallbackThread
    from openhcs_nb.client._preview_cache import PreviewCache
    from openhcs_nb.client.connection import Connection

__all__ = ["DoneCallback", "Execution", "StartedCallback", "WellCallback"]


class Execution(ExecutionFeed):
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
        self.plate = plate
        self.label = label
        self.requested_wells: tuple[str, ...] = tuple(wells)
        super().__init__(
            connection,
            execution_id,
            dispatcher=dispatcher,
            run=RunState(state, total, self.requested_wells),
            previews=previews,
        )

    # --- what is known --------------------------------------------------------

    @property
    def state(self) -> str:
        """One of ``queued running done failed cancelled``, or ``server lost``.

        ``running`` from the first sign of work (a well started or done,
        progress), even while another run holds the workers' attention;
        ``server lost`` once the server stopped answering (:class:`ServerLost`).
        """
        return self._run.state

    @property
    def error(self) -> str | None:
        """Why the execution failed as a whole, or why it can't be followed."""
        if self._stream_error is not None:
            return str(self._stream_error)
        return self._run.error

    @property
    def progress(self) -> tuple[int, int, int]:
        """``(done, failed, total)`` wells so far."""
        with self._cond:
            failed = sum(1 for e in self._run.events if not e.ok)
            return len(self._run.events) - failed, failed, self._run.total

    @property
    def running_wells(self) -> set[str]:
        """Wells a worker has taken and not yet finished (empty once ended)."""
        with self._cond:
            return set() if self._run.finished else set(self._run.running)

    def well_state(self, well: str) -> str:
        """``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.

        Wells that never ran in a cancelled execution read ``cancelled``.

        Raises
        ------
        KeyError
            ``well`` is not one of this execution's wells.
        """
        with self._cond:
            return self._run.well_state(well)

    @property
    def phase(self) -> tuple[str, int, int] | None:
        """The plate-level phase seen last, ``(name, wells done, total)``.

        ``("illumination", 24, 24)`` once a flat-field fit has read every
        well; None for a pipeline without a plate-level phase.
        """
        with self._cond:
            return self._run.phase

    @property
    def wells(self) -> dict[str, WellEvent]:
        """Every well reported so far, in arrival order.

        Images are attached while the preview budget keeps them; otherwise a
        record has ``previews_dropped`` set (see :meth:`previews`).
        """
        with self._cond:
            records = list(self._run.by_well.values())
        return {record.well: self._hydrated(record) for record in records}

    @property
    def failed_wells(self) -> dict[str, str]:
        """``{well: error and remote traceback}`` of the wells that failed."""
        with self._cond:
            return {
                e.well: f"{e.error}\n{e.traceback}" if e.traceback else str(e.error)
                for e in self._run.events
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
            record = self._run.by_well.get(well)
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

    def fetch_full(
        self, well: str, timeout: float | None = None, *, site: int = 0
    ) -> dict[str, Any]:
        """Full-resolution images of field ``site`` of ``well``, fetched now.

        Raises
        ------
        KeyError
            No result for ``well`` has arrived (yet).
        RemoteError
            The server refused or did not answer.
        """
        with self._cond:
            if well not in self._run.by_well:
                raise KeyError(f"execution {self.id} has no result for well {well!r}")
            seq = self._run.by_well[well].seq
        return self._connection._fetch_images(self.id, seq, timeout, site=site)

    pyramid = _tiles.execution_pyramid
    tile = _tiles.execution_tile
    objects = _objects.execution_objects

    # --- future-like ----------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the execution ends; False on timeout or closed connection.

        True, at once, when the server was lost (``result`` says so).
        """
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
        ServerLost
            The server stopped answering; ``attach`` again once it is back.
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
        if self._run.state == "failed":
            raise RemoteExecutionError(
                f"execution {self.id} on {self.plate} failed: "
                f"{self._run.error or 'no reason given'}",
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
            seen = [self._hydrated(record) for record in self._run.events]
            self._well_callbacks.append(callback)
            if seen:
                self._dispatcher.put(lambda: _call_each([callback], seen))
        return callback

    def on_well_started(self, callback: StartedCallback) -> StartedCallback:
        """Call ``callback(well)`` when a worker takes a well, once per well.

        Wells running now are replayed first; a well whose result came before
        its start was seen is not reported as started. Runs on the callback
        thread, like :meth:`on_well`; returns ``callback`` (a decorator).
        """
        with self._cond:
            running = [] if self._run.finished else list(self._run.running)
            self._started_callbacks.append(callback)
            if running:
                self._dispatcher.put(lambda: _call_each([callback], running))
        return callback

    def __iter__(self) -> Iterator[WellEvent]:
        """Yield every well (those already seen first), blocking until the end."""
        index = 0
        while True:
            with self._cond:
                self._cond.wait_for(self._more_than(index))
                if index >= len(self._run.events):
                    self._raise_if_cut_off()
                    return
                event = self._run.events[index]
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
                ready = index < len(self._run.events)
                event = self._run.events[index] if ready else None
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

    # --- display ----------------------------------------------------------------

    def _progress_text(self) -> str:
        done, failed, total = self.progress
        return f"{done}/{total} done, {failed} failed"

    def __repr__(self) -> str:
        return (
            f"<Execution {self.id} on {self.plate!r}: {self._run.state}, "
            f"{self._progress_text()}>"
        )

    def _repr_html_(self) -> str:
        """A static snapshot (the notebook layer may register a live panel)."""
        from openhcs_nb.client._html import execution_html

        done, failed, total = self.progress
        return execution_html(
            self.id, self.plate, self._run.state, done, failed, total, self.error
        )
