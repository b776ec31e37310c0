"""How an execution ends: done, failed or cancelled, stored first, then published.

An ending is written once, by whoever settles the run (see the scheduler):

- done: the results tables are finalized, the optional ``after_finalize`` hook
  (OMERO write-back) runs, then ``Finished(state="done")`` is stored with the
  FINISH transition. A failure on the way turns the end into "failed".
- failed: every unsettled well and the execution fail with one cause in one
  transaction. When the store cannot take it (full disk), the failure waits in
  :class:`~openhcs_nb.server.faults.PendingFailures` and is retried until it
  can, so a run never stays "running" once space is back.
- cancelled: the cancel itself was stored; only the Finished event is added.

``on_finished(execution_id, state, error)`` is told once the end is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server._events import finished_draft
from openhcs_nb.server.faults import PendingFailures, describe_fault
from openhcs_nb.server.jobs import (
    ExecutionTrigger,
    InvalidTransition,
    JobStore,
    StoredEvent,
)
from openhcs_nb.server.well_outcomes import ActiveExecution, well_results

log = logging.getLogger(__name__)
Publish = Callable[[StoredEvent], None]


class RunEndings:
    """Writes and publishes the end of executions; retries unwritten failures."""

    def __init__(
        self, store: JobStore, publish: Publish, *, retry_every_s: float = 2.0
    ) -> None:
        self.store = store
        self.publish = publish
        self._unwritten = PendingFailures(self.write_failure, retry_every_s)
        #: Called once an execution's tables are written; returns an error
        #: text for the Finished event, or None (OMERO write-back).
        self.after_finalize: Callable[[ActiveExecution], str | None] | None = None
        #: Called with (execution id, final state, error) once Finished is stored.
        self.on_finished: Callable[[str, str, str | None], None] | None = None

    def stop(self) -> None:
        """Stop retrying unwritten failures (the server is stopping)."""
        self._unwritten.stop()

    def unwritten_failures(self, user: str) -> int:
        """The user's runs that ended failed but are not stored so yet."""
        return self._unwritten.count(user)

    def publish_opt(self, stored: StoredEvent | None) -> None:
        """Publish ``stored`` when there is one."""
        if stored is not None:
            self.publish(stored)

    def finish(self, active: ActiveExecution) -> None:
        """End a settled execution: cancelled, failed, or done (tables first)."""
        if active.cancelled:
            self.publish_opt(self.finished_event(active.id, "cancelled"))
            return
        if active.failure is None:
            try:
                ResultsStore(active.out).finalize(well_results(self.store, active.id))
            except Exception as exc:
                log.exception("execution %s: finalize failed", active.id)
                active.failure = describe_fault(exc, "the results tables")
        if active.failure is not None:
            self.fail(active)
            return
        error = self.after_finalize(active) if self.after_finalize else None
        try:
            record = self.store.get_execution(active.id)
            assert record is not None
            event = finished_draft(record, "done", error)
            self.publish_opt(
                self.store.set_execution_state(
                    active.id, ExecutionTrigger.FINISH, event=event
                )
            )
        except Exception as exc:
            log.exception("execution %s: could not store its end", active.id)
            active.failure = describe_fault(exc, "the job store")
            self.fail(active)
            return
        self.announce(active.id, "done", error)

    def fail(self, active: ActiveExecution) -> None:
        """Fail the run with its cause now, or as soon as the store takes it."""
        cause = active.failure or "failed"
        log.warning("execution %s failed: %s", active.id, cause)
        self.fail_later(active.id, active.user, cause)

    def fail_later(self, execution_id: str, user: str, cause: str) -> None:
        """Write a failure if the store takes it, else retry it on a timer.

        Either way it never holds the user's quota for long.
        """
        try:
            self.write_failure(execution_id, cause)
        except Exception as exc:
            log.warning("execution %s: failure not stored yet: %s", execution_id, exc)
            self._unwritten.add(execution_id, user, cause)

    def write_failure(self, execution_id: str, cause: str) -> bool:
        """Store and publish a run's failure; True once nothing is left to do."""
        try:
            stored = self.store.fail_execution(
                execution_id,
                cause,
                lambda record: finished_draft(record, "failed", cause),
            )
        except InvalidTransition:  # it ended otherwise meanwhile (e.g. cancelled)
            return True
        self.publish_opt(stored)
        self.announce(execution_id, "failed", cause)
        return True

    def finished_event(self, execution_id: str, state: str) -> StoredEvent:
        """Store the Finished event of a run whose state is already written."""
        record = self.store.get_execution(execution_id)
        assert record is not None
        event = finished_draft(record, state)
        stored = self.store.append_event(execution_id, event.kind, event.payload)
        self.announce(execution_id, state, None)
        return stored

    def announce(self, execution_id: str, state: str, error: str | None) -> None:
        """Tell ``on_finished``; a failing hook is logged, never raised."""
        if self.on_finished is not None:
            try:
                self.on_finished(execution_id, state, error)
            except Exception:
                log.exception("execution %s: on_finished hook failed", execution_id)
