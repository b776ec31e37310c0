"""The durable job store (SQLite in WAL mode).

The state machine it enforces is the data table in
:mod:`openhcs_nb.server.job_states` (re-exported here).

Durability rules:

- Results are durable first, published second. Each method that changes state
  and logs an event does both in ONE transaction and returns the
  :class:`StoredEvent` only after COMMIT; the caller publishes exactly those bytes.
- An event's payload may need its own ``seq`` (the header carries it), so an
  :class:`EventDraft` payload may be a function ``seq -> bytes``; it runs inside
  the transaction and must not call back into the store.
- ``synchronous=FULL`` by default: a commit is fsynced to the WAL before the call
  returns, so a finished well survives ``kill -9`` and power loss. ``NORMAL``
  survives ``kill -9`` only.

Threads: one connection (``check_same_thread=False``) behind one lock. The server
thread writes, readers (fetch, status) take the same lock; every call is short.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openhcs_nb.results.store import pipeline_hash
from openhcs_nb.server import _job_moves as moves
from openhcs_nb.server import _jobs_schema as sql
from openhcs_nb.server._job_file import JobStoreError
from openhcs_nb.server._job_reads import JobStoreReads
from openhcs_nb.server.job_records import (
    CancelOutcome,
    EventDraft,
    ExecutionRecord,
    StoredEvent,
    WellRecord,
)
from openhcs_nb.server.job_states import (
    ACTIVE_STATES,
    EXECUTION_TRANSITIONS,
    TERMINAL_STATES,
    WELL_TRANSITIONS,
    ExecutionState,
    ExecutionTrigger,
    InvalidTransition,
    UnknownExecutionError,
    WellState,
    WellTrigger,
    execution_transition,
    well_transition,
)

_E, _W = ExecutionState, WellState

__all__ = [
    "ACTIVE_STATES",
    "EXECUTION_TRANSITIONS",
    "TERMINAL_STATES",
    "WELL_TRANSITIONS",
    "ExecutionState",
    "ExecutionTrigger",
    "InvalidTransition",
    "UnknownExecutionError",
    "WellState",
    "WellTrigger",
    "execution_transition",
    "well_transition",
    "CancelOutcome",
    "EventDraft",
    "ExecutionRecord",
    "JobStore",
    "JobStoreError",
    "StoredEvent",
    "WellRecord",
    "pipeline_hash",
]


# --- the store ----------------------------------------------------------------------


class JobStore(JobStoreReads):
    """Durable executions, wells and their event log in one SQLite file.

    Every write method is one transaction: it checks the state tables, writes the
    rows and the event, commits, and only then returns. Failed checks write nothing.

    Raises
    ------
    JobStoreError
        On open, when the file is not a job store or has a newer schema.
    """

    def __enter__(self) -> JobStore:
        """Use the store as a context manager that closes it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the store."""
        self.close()

    # -- writes ------------------------------------------------------------------

    def create_execution(
        self,
        user: str,
        plate: str,
        pipeline_code: str,
        wells: Sequence[str],
        options: Mapping[str, Any],
        *,
        omero_user: str | None = None,
    ) -> ExecutionRecord:
        """Store a QUEUED execution with its wells PENDING, in the order given.

        ``omero_user`` is set for executions on OMERO plates: only a connection
        that joined that OMERO user's session may see them. Each execution gets
        a fresh random ``stream_key``, the capability its event topic carries.

        Raises
        ------
        ValueError
            When ``wells`` is empty or names a well twice.
        TypeError
            When ``options`` is not JSON-serialisable.
        """
        if not wells:
            raise ValueError("an execution needs at least one well")
        if len(set(wells)) != len(wells):
            twice = sorted({well for well in wells if list(wells).count(well) > 1})
            raise ValueError(f"wells listed twice: {', '.join(twice)}")
        values = {
            "id": f"ex-{secrets.token_hex(6)}",
            "user": user,
            "plate": plate,
            "pipeline_code": pipeline_code,
            "pipeline_hash": pipeline_hash(pipeline_code),
            "options_json": json.dumps(dict(options), sort_keys=True),
            "state": _E.QUEUED.name,
            "submitted_at": time.time(),
            "total": len(wells),
            "omero_user": omero_user,
            "stream_key": secrets.token_hex(16),
        }
        with self._write() as db:
            sql.insert_execution(db, values, list(wells), _W.PENDING.name)
            return moves.execution_record(
                sql.select_executions(db, execution_id=values["id"])[0]
            )

    def append_event(
        self,
        execution_id: str,
        kind: str,
        payload: bytes | Callable[[int], bytes],
        arrays: bytes | None = None,
    ) -> StoredEvent:
        """Log one event with the next seq (1, 2, 3, ... per execution, no gaps).

        Raises
        ------
        UnknownExecutionError
            When the execution is not in the store.
        """
        with self._write() as db:
            return moves.append(db, execution_id, EventDraft(kind, payload, arrays))

    def set_execution_state(
        self,
        execution_id: str,
        trigger: ExecutionTrigger,
        *,
        error: str | None = None,
        event: EventDraft | None = None,
    ) -> StoredEvent | None:
        """Apply ``trigger`` to the execution and log ``event``, in one transaction.

        START stamps ``started_at``; FINISH, FAIL and CANCEL stamp ``finished_at``;
        ``error`` is kept with FAIL. :meth:`cancel` also cancels pending wells.

        Raises
        ------
        InvalidTransition
            When the table forbids it, or on FINISH while wells are unsettled.
        UnknownExecutionError
            When the execution is not in the store.
        """
        with self._write() as db:
            moves.move_execution(db, execution_id, trigger, error)
            return moves.append(db, execution_id, event) if event else None

    def record_well_started(
        self, execution_id: str, well: str, event: EventDraft | None = None
    ) -> StoredEvent | None:
        """Move a well PENDING -> RUNNING and count the attempt.

        Raises
        ------
        InvalidTransition, UnknownWellError, UnknownExecutionError
            Nothing is written.
        """
        with self._write() as db:
            moves.move_well(db, execution_id, well, WellTrigger.START)
            db.execute(
                "UPDATE wells SET started_at = ?, attempt = attempt + 1 "
                "WHERE execution_id = ? AND well = ?",
                (time.time(), execution_id, well),
            )
            return moves.append(db, execution_id, event) if event else None

    def record_well_done(
        self, execution_id: str, well: str, summary: bytes, event: EventDraft
    ) -> StoredEvent:
        """Commit a well's result and its event together; publish after it returns.

        Raises
        ------
        InvalidTransition, UnknownWellError, UnknownExecutionError
            Nothing is written.
        """
        with self._write() as db:
            moves.move_well(
                db, execution_id, well, WellTrigger.SUCCEED, summary=summary
            )
            return moves.append(db, execution_id, event)

    def record_well_failed(
        self,
        execution_id: str,
        well: str,
        error: str,
        traceback: str | None,
        event: EventDraft,
    ) -> StoredEvent:
        """Commit a well's failure (from PENDING or RUNNING) and its event together.

        Raises
        ------
        InvalidTransition, UnknownWellError, UnknownExecutionError
            Nothing is written.
        """
        with self._write() as db:
            moves.move_well(
                db,
                execution_id,
                well,
                WellTrigger.FAIL,
                error=error,
                traceback=traceback,
            )
            return moves.append(db, execution_id, event)

    def record_well_cancelled(
        self, execution_id: str, well: str, event: EventDraft | None = None
    ) -> StoredEvent | None:
        """Record that a running (or pending) well was stopped by a cancel.

        Raises
        ------
        InvalidTransition, UnknownWellError, UnknownExecutionError
            Nothing is written.
        """
        with self._write() as db:
            moves.move_well(db, execution_id, well, WellTrigger.CANCEL)
            return moves.append(db, execution_id, event) if event else None

    def cancel(
        self, execution_id: str, event: EventDraft | None = None
    ) -> CancelOutcome:
        """Cancel the execution and all its PENDING wells in one transaction.

        RUNNING wells stay RUNNING and are listed in the outcome: the caller stops
        them and reports each with :meth:`record_well_cancelled` (or done/failed
        when it finished first).

        Raises
        ------
        InvalidTransition
            When the execution already ended (FINISHED, FAILED, CANCELLED).
        UnknownExecutionError
            When the execution is not in the store.
        """
        with self._write() as db:
            moves.move_execution(db, execution_id, ExecutionTrigger.CANCEL, None)
            pending = sql.wells_in(db, execution_id, _W.PENDING.name)
            for well in pending:
                moves.move_well(db, execution_id, well, WellTrigger.CANCEL)
            running = sql.wells_in(db, execution_id, _W.RUNNING.name)
            stored = moves.append(db, execution_id, event) if event else None
        return CancelOutcome(tuple(running), len(pending), stored)

    def fail_execution(
        self,
        execution_id: str,
        cause: str,
        event: Callable[[ExecutionRecord], EventDraft] | None = None,
    ) -> StoredEvent | None:
        """Fail every PENDING and RUNNING well and the execution, in ONE transaction.

        Each unsettled well keeps ``cause`` as its error and the execution keeps
        it too, so a fault (a full disk) ends the whole run with one cause.
        ``event`` builds the last event from the record as it will be after the
        change (final counts); it must not call back into the store.

        Raises
        ------
        InvalidTransition
            When the execution already ended; nothing is written.
        UnknownExecutionError
            When the execution is not in the store.
        sqlite3.Error
            When the file cannot be written (disk full); nothing is written,
            so the caller may simply try again later.
        """
        with self._write() as db:
            moves.move_execution(db, execution_id, ExecutionTrigger.FAIL, cause)
            for state in (_W.PENDING, _W.RUNNING):
                for well in sql.wells_in(db, execution_id, state.name):
                    moves.move_well(
                        db, execution_id, well, WellTrigger.FAIL, error=cause
                    )
            if event is None:
                return None
            record = moves.execution_record(
                sql.select_executions(db, execution_id=execution_id)[0]
            )
            return moves.append(db, execution_id, event(record))

    def recover_after_restart(self) -> list[str]:
        """Make a crashed or stopped server's work resumable; call once at start-up.

        RUNNING executions go INTERRUPTED -> QUEUED, and INTERRUPTED ones (from a
        clean stop) go QUEUED. Their RUNNING wells go back to PENDING; ``attempt``
        already counts the lost try. RUNNING wells of executions that ended
        meanwhile (cancelled while running) become CANCELLED.

        Returns
        -------
        list[str]
            Ids of every QUEUED execution, oldest first: the queue to resume.
        """
        with self._write() as db:
            return moves.recover(db)

    def delete_execution(self, execution_id: str) -> bool:
        """Forget a finished, failed or cancelled execution: rows, wells, events.

        Returns False (and deletes nothing) when the execution is unknown or
        not in a terminal state, checked inside the same transaction, so a run
        that is queued, running or waiting to resume is never deleted.
        """
        terminal = tuple(state.name for state in TERMINAL_STATES)
        with self._write() as db:
            return sql.delete_execution(db, execution_id, terminal)
