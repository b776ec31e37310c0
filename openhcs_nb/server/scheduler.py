"""Hand wells to workers fairly, record every outcome, then publish it.

Each worker has one dispatcher thread that asks :meth:`Scheduler._next` for
work, runs it on its worker process (blocking), and records the outcome in the
job store *before* handing the stored event to ``publish``. Who goes next is
decided by :class:`~openhcs_nb.server.fairness.FairPolicy`: round-robin across
users, then across each user's executions, previews first but capped.

A well past ``[limits] well_timeout_s`` is interrupted and recorded FAILED with
``well_timeout: ...``; the plate goes on. A store that cannot be written (full
disk) fails the whole execution with a one-line cause and frees its run slot at
once; :class:`~openhcs_nb.server.run_endings.RunEndings` writes every end (and
such a failure when the store takes writes again). The plate phase's own steps
live in :mod:`~openhcs_nb.server.plate_phase_runs`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from openhcs_nb.protocol import Started, WellStarted
from openhcs_nb.server._events import draft
from openhcs_nb.server.fairness import FairPolicy, SchedulerLimits
from openhcs_nb.server.faults import describe_fault
from openhcs_nb.server.jobs import (
    ExecutionTrigger,
    InvalidTransition,
    JobStore,
    StoredEvent,
)
from openhcs_nb.server.plate_phase_runs import (
    count_contribution,
    fit_phase,
    is_phase_item,
    run_phase_task,
)
from openhcs_nb.server.run_endings import RunEndings
from openhcs_nb.server.well_executor import WellRunner
from openhcs_nb.server.well_outcomes import (
    ActiveExecution,
    PreviewJob,
    record_error,
    record_outcome,
    run_well_task,
)
from openhcs_nb.server.workers import TaskTimedOut, WorkerDied

__all__ = ["ActiveExecution", "PreviewJob", "Scheduler", "SchedulerLimits"]

log = logging.getLogger(__name__)
Publish = Callable[[StoredEvent], None]


class Scheduler:
    """Owns the queue and one dispatcher thread per worker."""

    def __init__(
        self,
        store: JobStore,
        workers: list[WellRunner],
        max_concurrent: int,
        publish: Publish,
        limits: SchedulerLimits | None = None,
        *,
        retry_every_s: float = 2.0,
    ):
        """``limits`` defaults to :class:`SchedulerLimits` (the shipped defaults)."""
        self.store = store
        self.workers = workers
        self.limits = limits or SchedulerLimits()
        self.max_concurrent = max(1, max_concurrent)
        self.publish = publish
        self._cond = threading.Condition()
        self._policy: FairPolicy[ActiveExecution, PreviewJob] = FairPolicy(
            max_concurrent, len(workers), self.limits
        )
        #: How runs end; the server sets its ``after_finalize``/``on_finished``.
        self.endings = RunEndings(store, publish, retry_every_s=retry_every_s)
        self._stopping = False
        self._threads: list[threading.Thread] = []

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
            running = [e for e in self._policy.running if e.running]
            self._cond.notify_all()
        self.endings.stop()
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
            position = self._policy.add(active)
            self._cond.notify_all()
            return position

    def preview(self, job: PreviewJob) -> None:
        """Queue a preview for the next free worker (ahead of plate wells).

        Raises
        ------
        QuotaExceededError
            The user already has ``max_previews_per_user`` previews queued or
            running; nothing was queued and the connection carries on.
        """
        with self._cond:
            self._policy.add_preview(job)
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
            running: list[WellRunner] = []
            if active is not None:
                active.cancelled = True
                active.pending.clear()
                running = list(active.running.values())
                if running and active in self._policy.running:
                    finish_here = False
                else:
                    self._policy.remove(active)
                self._cond.notify_all()
        self.store.cancel(execution_id)
        for worker in running:
            worker.cancel_current()
        if not finish_here:
            return None
        return self.endings.finished_event(execution_id, "cancelled")

    def finish_now(self, active: ActiveExecution) -> None:
        """Finish an execution whose wells all settled before a crash."""
        self._start_execution(active)
        self.endings.finish(active)

    def active_ids(self) -> list[str]:
        """Executions queued or running in this process."""
        with self._cond:
            return [a.id for a in (*self._policy.running, *self._policy.waiting)]

    def unwritten_failures(self, user: str) -> int:
        """The user's runs that ended failed but are not stored so yet.

        The store still counts them as active; a quota check may subtract these.
        """
        return self.endings.unwritten_failures(user)

    def fail_never_started(self, execution_id: str, user: str, cause: str) -> None:
        """Fail an execution that was stored but never queued (disk full at submit).

        Written now if the store takes it, else retried like any unwritten failure,
        so it never holds the user's quota.
        """
        self.endings.fail_later(execution_id, user, cause)

    # -- dispatching ---------------------------------------------------------------

    def _find(self, execution_id: str) -> ActiveExecution | None:
        for active in (*self._policy.running, *self._policy.waiting):
            if active.id == execution_id:
                return active
        return None

    def _next(
        self, worker: WellRunner
    ) -> PreviewJob | tuple[ActiveExecution, str] | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                for active in self._policy.admit():
                    self._admitted(active)
                picked = self._policy.pick()
                if picked is not None:
                    if isinstance(picked, tuple):
                        picked[0].running[picked[1]] = worker
                    return picked
                self._cond.wait()

    def _admitted(self, active: ActiveExecution) -> None:
        try:
            self._start_execution(active)
        except Exception as exc:
            log.exception("execution %s: could not start", active.id)
            self._fault(active, describe_fault(exc, "the job store"))

    def _start_execution(self, active: ActiveExecution) -> None:
        event = draft(Started, active.id, total=active.total, workers=len(self.workers))
        record = self.store.get_execution(active.id)
        if record is not None and record.state.name == "QUEUED":
            self.endings.publish_opt(
                self.store.set_execution_state(
                    active.id, ExecutionTrigger.START, event=event
                )
            )

    def _dispatch(self, worker: WellRunner) -> None:
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

    def _run_preview(self, worker: WellRunner, job: PreviewJob) -> None:
        limit = self.limits.preview_timeout_s
        try:
            status, payload = worker.run(job.task, limit, self.limits.timeout_grace_s)
        except WorkerDied as exc:
            status, payload = "error", ("WorkerDied", str(exc), "")
        except TaskTimedOut:
            text = (
                f"preview of {job.task.well} ran longer than "
                f"[limits] preview_timeout_s = {limit:g} s"
            )
            status, payload = "error", ("well_timeout", text, "")
        finally:
            with self._cond:
                self._policy.preview_done(job)
                self._cond.notify_all()
        job.reply(status, payload)

    def _run_well(self, worker: WellRunner, active: ActiveExecution, well: str) -> None:
        if is_phase_item(well):
            self._run_phase_item(worker, active, well)
            return
        try:
            if self._start_well(active, well):
                outcome = run_well_task(worker, active, well, self.limits)
                cause = record_outcome(
                    self.store,
                    self.publish,
                    active,
                    well,
                    outcome,
                    stopping=self._stopping,
                )
                if cause is not None:  # the other wells would hit the same disk
                    self._fault(active, cause)
        except Exception as exc:
            log.exception("execution %s well %s: could not record", active.id, well)
            # A bug in one outcome fails that well; a store that refuses writes
            # (full disk) fails the run.
            if not record_error(self.store, self.publish, active, well, exc):
                self._fault(active, describe_fault(exc, "the job store"))
        finally:
            with self._cond:
                active.running.pop(well, None)
                settled = self._settle_locked(active)
        if settled and not self._stopping:
            self.endings.finish(active)

    def _settle_locked(self, active: ActiveExecution) -> bool:
        """With the lock held: drop an execution with nothing left to run.

        True when this call settled it, so the caller finishes it.
        """
        settled = (
            not active.running and not active.pending and active in self._policy.running
        )
        if settled:
            self._policy.remove(active)
        self._cond.notify_all()
        return settled

    def _run_phase_item(
        self, worker: WellRunner, active: ActiveExecution, item: str
    ) -> None:
        """One contribution of the plate phase; the last one fits and queues wells."""
        status, payload = "cancelled", None
        if not active.cancelled and active.failure is None:
            status, payload = run_phase_task(worker, active, item, self.limits)
        cause = count_contribution(
            self.store, self.publish, active, item, status, payload
        )
        with self._cond:
            active.running.pop(item, None)
            fit_now = (
                cause is None
                and status != "cancelled"
                and not active.running
                and not active.pending
                and active.phase is not None
            )
        if fit_now:
            cause = fit_phase(active)
            if cause is None:
                with self._cond:
                    if not active.cancelled and active.failure is None:
                        active.pending = active.phase.wells
                    active.phase = None
                    self._cond.notify_all()
        if cause is not None:
            self._fault(active, cause)
            return
        with self._cond:
            settled = self._settle_locked(active)
        if settled and not self._stopping:
            self.endings.finish(active)

    def _start_well(self, active: ActiveExecution, well: str) -> bool:
        """Mark the well RUNNING and announce it; False when the run ended first.

        WellStarted is stored with the move (every attempt, resumed or not),
        so a viewer that fetches later still learns the well was running.
        """
        if active.cancelled or active.failure is not None:
            return False
        event = draft(WellStarted, active.id, well=well)
        try:
            stored = self.store.record_well_started(active.id, well, event)
        except InvalidTransition:  # cancelled between picking and starting
            return False
        self.endings.publish_opt(stored)
        return True

    # -- ending --------------------------------------------------------------------

    def _fault(self, active: ActiveExecution, cause: str) -> None:
        """End the whole run with ``cause``: drop its queue, interrupt its wells.

        The dispatcher that settles its last running well finishes it (failed);
        when nothing runs, this call does.
        """
        with self._cond:
            if active.failure is not None or active.cancelled:
                return
            active.failure = cause
            active.pending.clear()
            # The calling dispatcher's own worker is idle by now: no signal.
            others = list(active.running.values())
            finish_here = not active.running
            if finish_here:
                self._policy.remove(active)
            self._cond.notify_all()
        for worker in others:
            worker.cancel_current()
        if finish_here and not self._stopping:
            self.endings.finish(active)
