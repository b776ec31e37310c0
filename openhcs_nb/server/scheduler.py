"""Hand wells to workers fairly, record every outcome, then publish it.

Each worker has one dispatcher thread that asks :meth:`Scheduler._next` for
work, runs it on its worker process (blocking), and records the outcome in the
job store *before* handing the stored event to ``publish``. Previews jump the
queue, because a person is waiting on them. Wells are taken round-robin across
the running executions, so a 384-well plate never starves a 6-well one, and at
most ``max_concurrent`` executions run at once; the rest wait in order.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.well import WellError, WellResult
from openhcs_nb.plates.model import Plate
from openhcs_nb.protocol import Progress, Started, WellDone, WellFailed
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server._events import draft, finished_draft
from openhcs_nb.server.jobs import (
    ExecutionTrigger,
    InvalidTransition,
    JobStore,
    StoredEvent,
    WellState,
    WellTrigger,
)
from openhcs_nb.server.workers import PreviewTask, WellTask, Worker, WorkerDied

log = logging.getLogger(__name__)
Publish = Callable[[StoredEvent], None]
_PROGRESS_EVERY_S = 0.5


@dataclass
class ActiveExecution:
    """An accepted execution the scheduler is working through.

    ``user`` is the owner's principal (the authenticated key's user); fairness
    is decided per user.
    """

    id: str
    user: str
    plan: ExecutionPlan
    out: Path
    preview_size: int
    pending: deque[str]
    total: int
    done: int = 0
    failed: int = 0
    running: dict[str, Worker] = field(default_factory=dict)
    cancelled: bool = False
    last_progress: float = 0.0
    plate: Plate | None = None


@dataclass
class PreviewJob:
    """A preview a client is waiting for; ``reply`` gets (status, payload)."""

    task: PreviewTask
    reply: Callable[[str, Any], None]
    user: str = ""


class Scheduler:
    """Owns the queue and one dispatcher thread per worker."""

    def __init__(
        self,
        store: JobStore,
        workers: list[Worker],
        max_concurrent: int,
        publish: Publish,
    ):
        self.store = store
        self.workers = workers
        self.max_concurrent = max(1, max_concurrent)
        self.publish = publish
        self._cond = threading.Condition()
        self._waiting: deque[ActiveExecution] = deque()
        self._running: list[ActiveExecution] = []
        self._previews: deque[PreviewJob] = deque()
        self._turn = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        #: Called with the execution id once its tables are written; returns
        #: an error text for the Finished event, or None (OMERO write-back).
        self.after_finalize: Callable[[ActiveExecution], str | None] | None = None
        #: Called with (execution id, final state, error) once Finished is stored.
        self.on_finished: Callable[[str, str, str | None], None] | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start one dispatcher thread per worker."""
        for worker in self.workers:
            thread = threading.Thread(
                target=self._dispatch, args=(worker,), name=f"dispatch-{worker.index}"
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, grace: float = 5.0) -> None:
        """Stop handing out work, interrupt what runs, and wait for the threads.

        Interrupted wells stay RUNNING in the store; the next start-up's
        recovery puts them back to PENDING, so nothing finished is redone.
        """
        with self._cond:
            self._stopping = True
            running = [e for e in self._running if e.running]
            self._cond.notify_all()
        for active in running:
            for worker in list(active.running.values()):
                worker.cancel_current()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    # -- requests from the server loop ---------------------------------------------

    def enqueue(self, active: ActiveExecution) -> int:
        """Queue an accepted execution; returns its position (0 = next)."""
        with self._cond:
            self._waiting.append(active)
            self._cond.notify_all()
            return len(self._waiting) - 1

    def preview(self, job: PreviewJob) -> None:
        """Run a preview before any queued well."""
        with self._cond:
            self._previews.append(job)
            self._cond.notify_all()

    def cancel(self, execution_id: str) -> StoredEvent | None:
        """Drop an execution's queued wells and interrupt its running ones.

        Returns the Finished event when nothing was running (otherwise it is
        stored once the interrupted wells report back).

        Raises
        ------
        InvalidTransition
            The execution already ended.
        """
        # Exactly one party stores the Finished event: this call when nothing
        # runs, else the dispatcher that settles the last interrupted well.
        with self._cond:
            active = self._find(execution_id)
            finish_here = True
            running: list[Worker] = []
            if active is not None:
                active.cancelled = True
                active.pending.clear()
                running = list(active.running.values())
                if active in self._waiting:
                    self._waiting.remove(active)
                elif running:
                    finish_here = False
                elif active in self._running:
                    self._running.remove(active)
        self.store.cancel(execution_id)
        for worker in running:
            worker.cancel_current()
        return self._finished_event(execution_id, "cancelled") if finish_here else None

    def finish_now(self, active: ActiveExecution) -> None:
        """Finish an execution whose wells all settled before a crash."""
        self._start_execution(active)
        self._finish(active)

    def active_ids(self) -> list[str]:
        """Executions queued or running in this process."""
        with self._cond:
            return [a.id for a in (*self._running, *self._waiting)]

    # -- dispatching ---------------------------------------------------------------

    def _find(self, execution_id: str) -> ActiveExecution | None:
        for active in (*self._running, *self._waiting):
            if active.id == execution_id:
                return active
        return None

    def _next(self, worker: Worker) -> PreviewJob | tuple[ActiveExecution, str] | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                if self._previews:
                    return self._previews.popleft()
                picked = self._pick(worker)
                if picked is not None:
                    return picked
                self._cond.wait()

    def _pick(self, worker: Worker) -> tuple[ActiveExecution, str] | None:
        while self._waiting and len(self._running) < self.max_concurrent:
            active = self._waiting.popleft()
            self._running.append(active)
            self._start_execution(active)
        candidates = [a for a in self._running if a.pending and not a.cancelled]
        if not candidates:
            return None
        active = candidates[self._turn % len(candidates)]
        self._turn += 1
        well = active.pending.popleft()
        active.running[well] = worker
        return active, well

    def _start_execution(self, active: ActiveExecution) -> None:
        event = draft(Started, active.id, total=active.total, workers=len(self.workers))
        record = self.store.get_execution(active.id)
        if record is not None and record.state.name == "QUEUED":
            self.publish_opt(
                self.store.set_execution_state(
                    active.id, ExecutionTrigger.START, event=event
                )
            )

    def publish_opt(self, stored: StoredEvent | None) -> None:
        """Publish ``stored`` when there is one."""
        if stored is not None:
            self.publish(stored)

    def _dispatch(self, worker: Worker) -> None:
        while True:
            job = self._next(worker)
            if job is None:
                return
            try:
                if isinstance(job, PreviewJob):
                    self._run_preview(worker, job)
                else:
                    self._run_well(worker, *job)
            except Exception:
                # A dispatcher that dies would silently lose a worker.
                log.exception("worker %d: dispatch failed", worker.index)

    def _run_preview(self, worker: Worker, job: PreviewJob) -> None:
        try:
            status, payload = worker.run(job.task)
        except WorkerDied as exc:
            status, payload = "error", ("WorkerDied", str(exc), "")
        job.reply(status, payload)

    def _run_well(self, worker: Worker, active: ActiveExecution, well: str) -> None:
        try:
            if active.cancelled:
                raise InvalidTransition("well", WellState.CANCELLED, WellTrigger.START)
            self.store.record_well_started(active.id, well)
            started = True
        except InvalidTransition:  # cancelled between picking and starting
            started = False
        try:
            if started:
                task = WellTask(
                    active.plan,
                    well,
                    str(active.out),
                    active.preview_size,
                    active.plate,
                )
                try:
                    status, payload = worker.run(task)
                except WorkerDied as exc:
                    status, payload = "error", ("WorkerDied", str(exc), "")
                if status == "ok" and not payload.ok:
                    status = "failed"
                self._record(active, well, status, payload)
        except Exception as exc:
            log.exception("execution %s well %s: could not record", active.id, well)
            self._record_failure(active, well, exc)
        finally:
            with self._cond:
                active.running.pop(well, None)
                settled = (
                    not active.running
                    and not active.pending
                    and active in self._running
                )
                if settled:
                    self._running.remove(active)
                self._cond.notify_all()
        if settled and not self._stopping:
            self._finish(active)

    def _record(
        self, active: ActiveExecution, well: str, status: str, payload: Any
    ) -> None:
        if status == "cancelled" and self._stopping and not active.cancelled:
            # Interrupted by shutdown: left RUNNING so start-up recovery re-runs it.
            return
        if status == "cancelled":
            self.store.record_well_cancelled(active.id, well)
            return
        if status == "ok":
            result: WellResult = payload
            summary = msgspec.msgpack.encode(result.summary)
            event = draft(
                WellDone,
                active.id,
                result.previews,
                well=well,
                summary=result.summary,
                objects=int(result.summary.get("count", 0)),
                elapsed=result.seconds,
            )
            self.publish(self.store.record_well_done(active.id, well, summary, event))
            active.done += 1
        else:
            if status == "failed":
                error: WellError = payload.error
                kind, message, trace = error.type, error.message, error.traceback
            else:
                kind, message, trace = payload
            text = f"{kind}: {message}"
            event = draft(
                WellFailed, active.id, well=well, error=text, remote_traceback=trace
            )
            self.publish(
                self.store.record_well_failed(active.id, well, text, trace, event)
            )
            active.failed += 1
            log.info("execution %s well %s failed: %s", active.id, well, text)
        self._progress(active)

    def _record_failure(
        self, active: ActiveExecution, well: str, exc: Exception
    ) -> None:
        """Settle a well whose outcome could not be stored, so the run can end."""
        import traceback

        trace = "".join(traceback.format_exception(exc))
        with contextlib.suppress(Exception):
            self._record(active, well, "error", (type(exc).__name__, str(exc), trace))

    def _progress(self, active: ActiveExecution) -> None:
        now = time.monotonic()
        last = not active.pending and len(active.running) <= 1
        if not last and now - active.last_progress < _PROGRESS_EVERY_S:
            return
        active.last_progress = now
        event = draft(
            Progress,
            active.id,
            done=active.done,
            failed=active.failed,
            total=active.total,
        )
        self.publish(self.store.append_event(active.id, event.kind, event.payload))

    def _finish(self, active: ActiveExecution) -> None:
        if active.cancelled:
            self.publish_opt(self._finished_event(active.id, "cancelled"))
            return
        error = None
        try:
            ResultsStore(active.out).finalize(self.well_results(active.id))
        except Exception as exc:
            error = f"writing the results tables failed: {exc}"
            log.exception("execution %s: finalize failed", active.id)
        if error is None and self.after_finalize is not None:
            error = self.after_finalize(active)
        record = self.store.get_execution(active.id)
        assert record is not None
        event = finished_draft(record, "done", error)
        self.publish_opt(
            self.store.set_execution_state(
                active.id, ExecutionTrigger.FINISH, event=event
            )
        )
        self._announce(active.id, "done", error)

    def _announce(self, execution_id: str, state: str, error: str | None) -> None:
        if self.on_finished is not None:
            try:
                self.on_finished(execution_id, state, error)
            except Exception:
                log.exception("execution %s: on_finished hook failed", execution_id)

    def _finished_event(self, execution_id: str, state: str) -> StoredEvent:
        record = self.store.get_execution(execution_id)
        assert record is not None
        event = finished_draft(record, state)
        stored = self.store.append_event(execution_id, event.kind, event.payload)
        self._announce(execution_id, state, None)
        return stored

    def well_results(self, execution_id: str) -> list[WellResult]:
        """The finished wells of an execution, rebuilt from the store."""
        results = []
        for row in self.store.wells(execution_id):
            if row.state.name == "DONE":
                summary = msgspec.msgpack.decode(row.summary) if row.summary else {}
                results.append(WellResult(row.well, summary))
            elif row.state.name == "FAILED":
                kind, _, message = (row.error or "").partition(": ")
                error = WellError(kind, message, row.traceback or "")
                results.append(WellResult(row.well, error=error))
        return results
