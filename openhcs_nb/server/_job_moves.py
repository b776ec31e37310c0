"""The job store's moves inside a transaction: checked against the state tables.

Each function takes the open connection of a :class:`~openhcs_nb.server.jobs.JobStore`
transaction; none commits. A move that the tables in
:mod:`~openhcs_nb.server.job_states` forbid raises before anything is written.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Literal

from openhcs_nb.errors import UnknownWellError
from openhcs_nb.server import _jobs_schema as sql
from openhcs_nb.server.job_records import EventDraft, ExecutionRecord, StoredEvent
from openhcs_nb.server.job_states import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    ExecutionState,
    ExecutionTrigger,
    InvalidTransition,
    UnknownExecutionError,
    WellState,
    WellTrigger,
    execution_transition,
    well_transition,
)

_W = WellState

ACTIVE_NAMES = tuple(state.name for state in ACTIVE_STATES)

# The execution counter that each settled well state adds to.
_COUNTERS: dict[WellState, Literal["done", "failed", "cancelled"]] = {
    _W.DONE: "done",
    _W.FAILED: "failed",
    _W.CANCELLED: "cancelled",
}


def row_of(db: sqlite3.Connection, execution_id: str) -> tuple[Any, ...]:
    row = sql.execution_row(db, execution_id)
    if row is None:
        raise UnknownExecutionError(f"no execution {execution_id!r}")
    return row


def ids_in(db: sqlite3.Connection, state: ExecutionState) -> list[str]:
    return [row[0] for row in sql.select_executions(db, states=(state.name,))]


def move_execution(
    db: sqlite3.Connection,
    execution_id: str,
    trigger: ExecutionTrigger,
    error: str | None,
) -> None:
    state, total, done, failed, cancelled, _ = row_of(db, execution_id)
    current = ExecutionState[state]
    what = f"execution {execution_id}"
    target = execution_transition(current, trigger, what)
    unsettled = total - done - failed - cancelled
    if trigger is ExecutionTrigger.FINISH and unsettled:
        raise InvalidTransition(what, current, trigger, f"{unsettled} wells unsettled")
    sql.write_execution_state(
        db,
        execution_id,
        target.name,
        started=trigger is ExecutionTrigger.START,
        finished=target in TERMINAL_STATES,
        error=error,
    )


def move_well(
    db: sqlite3.Connection,
    execution_id: str,
    well: str,
    trigger: WellTrigger,
    **settled_columns: Any,
) -> None:
    state = sql.well_state(db, execution_id, well)
    if state is None:
        row_of(db, execution_id)  # raises UnknownExecutionError first if unknown
        raise UnknownWellError(f"well {well!r} is not part of {execution_id}")
    target = well_transition(
        WellState[state], trigger, f"well {well} of {execution_id}"
    )
    if target in _COUNTERS:
        sql.write_well(
            db,
            execution_id,
            well,
            state=target.name,
            finished_at=time.time(),
            **settled_columns,
        )
        sql.add_to_counter(db, execution_id, _COUNTERS[target])
    elif target is _W.PENDING:  # requeued after a restart
        sql.write_well(db, execution_id, well, state=target.name, started_at=None)
    else:
        sql.write_well(db, execution_id, well, state=target.name)


def append(db: sqlite3.Connection, execution_id: str, draft: EventDraft) -> StoredEvent:
    seq = int(row_of(db, execution_id)[5]) + 1
    payload = draft.payload(seq) if callable(draft.payload) else draft.payload
    sql.insert_event(db, execution_id, seq, draft.kind, payload, draft.arrays)
    return StoredEvent(execution_id, seq, draft.kind, bytes(payload), draft.arrays)


def execution_record(row: Sequence[Any]) -> ExecutionRecord:
    values = list(row)
    values[5] = json.loads(values[5])
    values[6] = ExecutionState[values[6]]
    return ExecutionRecord(*values)


def recover(db: sqlite3.Connection) -> list[str]:
    """Requeue a stopped server's work; the ids of every QUEUED execution.

    See :meth:`~openhcs_nb.server.jobs.JobStore.recover_after_restart`.
    """
    for state, trigger in (
        (ExecutionState.RUNNING, ExecutionTrigger.INTERRUPT),
        (ExecutionState.INTERRUPTED, ExecutionTrigger.RESUME),
    ):
        for execution_id in ids_in(db, state):
            move_execution(db, execution_id, trigger, None)
    stuck = db.execute(
        "SELECT w.execution_id, w.well, e.state FROM wells w "
        "JOIN executions e ON e.id = w.execution_id WHERE w.state = ?",
        (_W.RUNNING.name,),
    ).fetchall()
    for execution_id, well, state in stuck:
        if ExecutionState[state] in ACTIVE_STATES:
            move_well(db, execution_id, well, WellTrigger.REQUEUE)
        else:
            move_well(db, execution_id, well, WellTrigger.CANCEL)
    return ids_in(db, ExecutionState.QUEUED)
