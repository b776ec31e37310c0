"""The plate-level phase of a server execution: contributions, then the fit.

A plan with a plate phase (illumination correction) first queues one
contribution task per well that has none on disk yet; these go through the
same fair queue and workers as wells, under ``[limits] well_timeout_s``. When
the last one lands, the dispatcher that ran it fits the flat fields and only
then queues the wells. Contributions and the fit are files in the
execution's results folder, so after a restart (even ``kill -9``) the phase
redoes only the wells whose part is missing. Progress events carry
``phase="illumination"`` while it runs.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openhcs_nb.execution import plate_phase
from openhcs_nb.protocol import Progress
from openhcs_nb.server._events import draft
from openhcs_nb.server.fairness import SchedulerLimits
from openhcs_nb.server.faults import describe_fault
from openhcs_nb.server.jobs import JobStore, StoredEvent
from openhcs_nb.server.workers import PhaseTask, TaskTimedOut, Worker, WorkerDied

PHASE = "illumination"
log = logging.getLogger(__name__)


@dataclass
class PhaseRun:
    """Where an execution's plate phase stands; ``wells`` wait for the fit."""

    wells: deque[str]
    total: int
    done: int


def is_phase_item(item: str) -> bool:
    """Whether a queue item is a phase contribution rather than a well."""
    return item.startswith(plate_phase.PHASE_PREFIX)


def prepare_phase(active: Any) -> None:
    """Put an execution's missing contributions ahead of its wells.

    Does nothing when the plan has no phase or the fit is already on disk.
    """
    plan = active.plan
    if not active.pending or plan.plate_phase is None:
        return
    if plate_phase.is_fitted(active.out):
        return
    missing = plate_phase.missing_wells(plan, active.out)
    total = len(plan.wells)
    active.phase = PhaseRun(active.pending, total, total - len(missing))
    active.pending = deque(plate_phase.PHASE_PREFIX + w for w in missing)


def run_phase_task(
    worker: Worker, active: Any, item: str, limits: SchedulerLimits
) -> tuple[str, Any]:
    """Run one contribution; ("ok", fields), ("cancelled", None) or an error."""
    well = item[len(plate_phase.PHASE_PREFIX) :]
    task = PhaseTask(active.plan, well, str(active.out), active.plate)
    limit = limits.well_timeout_s
    try:
        return worker.run(task, limit, limits.timeout_grace_s)
    except WorkerDied as exc:
        return "error", ("WorkerDied", str(exc), "")
    except TaskTimedOut:
        text = f"well {well} ran longer than [limits] well_timeout_s = {limit:g} s"
        return "error", ("well_timeout", text, "")


def failure_cause(item: str, payload: Any) -> str:
    """Why a well was left out of the fit, in one line for the log."""
    well = item[len(plate_phase.PHASE_PREFIX) :]
    kind, message = (payload[0], payload[1]) if payload else ("error", "")
    return f"well {well} left out of the illumination fit: {kind}: {message}"


def progress_draft(active: Any) -> Any:
    """A Progress event for the phase (not for the wells)."""
    phase: PhaseRun = active.phase
    return draft(
        Progress,
        active.id,
        done=phase.done,
        failed=0,
        total=phase.total,
        phase=PHASE,
    )


def count_contribution(
    store: JobStore,
    publish: Callable[[StoredEvent], None],
    active: Any,
    item: str,
    status: str,
    payload: Any,
) -> str | None:
    """Count a landed contribution and publish the phase's progress.

    A failed contribution is only logged: its well is left out of the fit and
    fails on its own later. Returns a cause that ends the run (the store
    refused the event, e.g. a full disk), else None.
    """
    if status == "ok":
        active.phase.done += 1
        try:
            event = progress_draft(active)
            publish(store.append_event(active.id, event.kind, event.payload))
        except Exception as exc:
            return describe_fault(exc, "the job store")
    elif status != "cancelled":
        log.warning("execution %s: %s", active.id, failure_cause(item, payload))
    return None


def fit_phase(active: Any) -> str | None:
    """Fit the flat fields from every contribution; a cause when that failed."""
    try:
        plate_phase.fit(active.plan, active.out)
    except Exception as exc:
        log.exception("execution %s: illumination fit failed", active.id)
        return f"illumination fit failed: {describe_fault(exc, 'the fit')}"
    return None
