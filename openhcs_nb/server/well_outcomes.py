"""What the scheduler works through, and how each well's outcome is stored.

Every outcome is committed to the job store first and published second (the
stored bytes are what subscribers get). A well that failed because the disk is
full is reported back as a *run* fault: every other well would fail the same.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.well import WellError, WellResult
from openhcs_nb.plates.model import Plate
from openhcs_nb.protocol import Progress, WellDone, WellFailed
from openhcs_nb.server._events import draft
from openhcs_nb.server.fairness import SchedulerLimits
from openhcs_nb.server.faults import storage_cause
from openhcs_nb.server.jobs import JobStore, StoredEvent
from openhcs_nb.server.log_format import ids
from openhcs_nb.server.workers import (
    PreviewTask,
    TaskTimedOut,
    WellTask,
    Worker,
    WorkerDied,
)

log = logging.getLogger(__name__)
Publish = Callable[[StoredEvent], None]
_PROGRESS_EVERY_S = 0.5


@dataclass(eq=False)
class ActiveExecution:
    """An accepted execution the scheduler is working through.

    ``user`` is the owner's principal (the authenticated key's user); fairness
    is decided per user. ``failure`` is set once a fault ends the whole run.
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
    failure: str | None = None
    # The plate-level phase still to finish before the wells (plate_phase_runs).
    phase: Any = None


@dataclass(eq=False)
class PreviewJob:
    """A preview a client is waiting for; ``reply`` gets (status, payload)."""

    task: PreviewTask
    reply: Callable[[str, Any], None]
    user: str = ""


def run_well_task(
    worker: Worker, active: ActiveExecution, well: str, limits: SchedulerLimits
) -> tuple[str, Any]:
    """Run one well on ``worker`` within ``[limits] well_timeout_s``.

    Returns the worker's outcome, with "failed" for a well whose own code
    failed, and an ``("error", ("well_timeout", ...))`` one past the limit.
    """
    task = WellTask(
        active.plan, well, str(active.out), active.preview_size, active.plate
    )
    limit = limits.well_timeout_s
    try:
        status, payload = worker.run(task, limit, limits.timeout_grace_s)
    except WorkerDied as exc:
        return "error", ("WorkerDied", str(exc), "")
    except TaskTimedOut:
        text = f"well {well} ran longer than [limits] well_timeout_s = {limit:g} s"
        return "error", ("well_timeout", text, "")
    if status == "ok" and not payload.ok:
        status = "failed"
    return status, payload


def record_outcome(
    store: JobStore,
    publish: Publish,
    active: ActiveExecution,
    well: str,
    outcome: tuple[str, Any],
    *,
    stopping: bool,
) -> str | None:
    """Store and publish one well's outcome; returns a run fault's cause or None.

    ``outcome`` is what :meth:`Worker.run` returned, with "failed" for a
    well whose own code failed. A well interrupted by shutdown stays RUNNING
    (start-up recovery re-runs it); one interrupted by a run fault is left for
    :meth:`JobStore.fail_execution`.

    Raises
    ------
    sqlite3.Error, OpenHCSError
        The store refused the write; the caller fails the run.
    """
    status, payload = outcome
    if status == "cancelled":
        if active.failure is None and (active.cancelled or not stopping):
            store.record_well_cancelled(active.id, well)
        return None
    if status == "ok":
        result: WellResult = payload
        event = draft(
            WellDone,
            active.id,
            result.previews,
            well=well,
            summary=result.summary,
            objects=int(result.summary.get("count", 0)),
            elapsed=result.seconds,
        )
        summary = msgspec.msgpack.encode(result.summary)
        publish(store.record_well_done(active.id, well, summary, event))
        active.done += 1
        _progress(store, publish, active)
        return None
    if status == "failed":
        error: WellError = payload.error
        kind, message, trace = error.type, error.message, error.traceback
    else:
        kind, message, trace = payload
    text = f"{kind}: {message}"
    event = draft(WellFailed, active.id, well=well, error=text, remote_traceback=trace)
    publish(store.record_well_failed(active.id, well, text, trace, event))
    active.failed += 1
    log.info(
        "execution %s well %s failed: %s",
        active.id,
        well,
        text,
        extra=ids(user=active.user),
    )
    cause = storage_cause(kind, message)
    if cause is None:
        _progress(store, publish, active)
    return cause


def record_error(
    store: JobStore,
    publish: Publish,
    active: ActiveExecution,
    well: str,
    exc: Exception,
) -> bool:
    """Record ``well`` FAILED with ``exc`` when its outcome could not be stored.

    Returns False when that cannot be done either, or when ``exc`` says the
    store itself refuses writes: then the run must end (a fault).
    """
    if isinstance(exc, (sqlite3.Error, OSError)):
        return False
    trace = "".join(traceback.format_exception(exc))
    outcome = ("error", (type(exc).__name__, str(exc), trace))
    try:
        record_outcome(store, publish, active, well, outcome, stopping=False)
    except Exception:
        log.exception("execution %s well %s: could not record", active.id, well)
        return False
    return True


def _progress(store: JobStore, publish: Publish, active: ActiveExecution) -> None:
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
    publish(store.append_event(active.id, event.kind, event.payload))


def well_results(store: JobStore, execution_id: str) -> list[WellResult]:
    """The finished wells of an execution, rebuilt from the store."""
    results = []
    for row in store.wells(execution_id):
        if row.state.name == "DONE":
            summary = msgspec.msgpack.decode(row.summary) if row.summary else {}
            results.append(WellResult(row.well, summary))
        elif row.state.name == "FAILED":
            kind, _, message = (row.error or "").partition(": ")
            error = WellError(kind, message, row.traceback or "")
            results.append(WellResult(row.well, error=error))
    return results
