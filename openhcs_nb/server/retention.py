"""Pruning old executions: their job-store rows, event log and result store.

``[retention]`` sets two rules, each off at 0: runs that *finished* more than
``max_age_days`` ago go, then the oldest finished runs go while the results
folder is larger than ``max_total_gib``. What is never pruned, whatever its
age or size:

- a run that is queued, running, or interrupted and waiting to resume (only
  finished, failed and cancelled runs are candidates; the store checks the
  state again in the transaction that deletes the rows);
- a finished run on an OMERO plate whose write-back has not succeeded
  (``omero_writeback.json`` missing, or not ``"done"``): its results are the
  only copy until ``openhcs-server writeback`` succeeds.

The rows are deleted first, so no client can attach to a half-deleted run; the
folder follows. ``openhcs-server prune --dry-run`` prints the same plan.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openhcs_nb.server._config_ops import RetentionSection
from openhcs_nb.server.disk_usage import folder_bytes
from openhcs_nb.server.jobs import TERMINAL_STATES, ExecutionRecord, JobStore

log = logging.getLogger(__name__)

_GIB = 1024**3
WRITEBACK_FILE = "omero_writeback.json"


@dataclass(frozen=True)
class PruneItem:
    """One run the plan removes, and why (``"age"`` or ``"size"``)."""

    execution_id: str
    user: str
    state: str
    finished_at: float
    bytes: int
    reason: str


@dataclass(frozen=True)
class PrunePlan:
    """What a prune removes, what it keeps that it otherwise would, and sizes."""

    remove: tuple[PruneItem, ...]
    kept_for_writeback: tuple[str, ...]
    total_bytes: int

    @property
    def freed_bytes(self) -> int:
        """Bytes of result stores the plan removes."""
        return sum(item.bytes for item in self.remove)


def writeback_pending(record: ExecutionRecord, results_root: Path) -> bool:
    """Whether an OMERO run's results have not yet been written back."""
    if not record.plate.startswith("omero:"):
        return False
    status = results_root / record.id / WRITEBACK_FILE
    try:
        return json.loads(status.read_text(encoding="utf-8")).get("state") != "done"
    except (OSError, ValueError, AttributeError):
        return True


def plan_prune(
    store: JobStore,
    results_root: Path,
    policy: RetentionSection,
    *,
    now: float | None = None,
) -> PrunePlan:
    """The runs ``policy`` removes now, oldest first; nothing is changed."""
    now = time.time() if now is None else now
    finished: list[ExecutionRecord] = []
    kept: list[str] = []
    for record in store.list_executions():
        if record.state not in TERMINAL_STATES:
            continue
        if writeback_pending(record, results_root):
            kept.append(record.id)
            continue
        finished.append(record)
    finished.sort(key=lambda r: (r.finished_at or r.submitted_at, r.id))
    total = folder_bytes(results_root)
    sizes = {r.id: folder_bytes(results_root / r.id) for r in finished}
    remove: list[PruneItem] = []
    if policy.max_age_days > 0:
        cutoff = now - policy.max_age_days * 86400.0
        for record in finished:
            if (record.finished_at or record.submitted_at) < cutoff:
                remove.append(_item(record, sizes[record.id], "age"))
    if policy.max_total_gib > 0:
        limit = policy.max_total_gib * _GIB
        left = total - sum(item.bytes for item in remove)
        chosen = {item.execution_id for item in remove}
        for record in finished:
            if left <= limit:
                break
            if record.id not in chosen:
                remove.append(_item(record, sizes[record.id], "size"))
                left -= sizes[record.id]
    return PrunePlan(tuple(remove), tuple(kept), total)


def apply_prune(
    store: JobStore, results_root: Path, items: Sequence[PruneItem]
) -> list[PruneItem]:
    """Remove the planned runs; returns those removed (the store re-checks each)."""
    removed = []
    for item in items:
        if not store.delete_execution(item.execution_id):
            log.info("prune: %s is active again or gone; kept", item.execution_id)
            continue
        folder = results_root / item.execution_id
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            log.error("prune: could not remove %s; remove it by hand", folder)
        removed.append(item)
        log.info(
            "pruned %s of %s (%s, %d bytes)",
            item.execution_id,
            item.user,
            item.reason,
            item.bytes,
            extra={"execution_id": item.execution_id, "user": item.user},
        )
    return removed


def _item(record: ExecutionRecord, size: int, reason: str) -> PruneItem:
    return PruneItem(
        execution_id=record.id,
        user=record.user,
        state=record.state.name.lower(),
        finished_at=record.finished_at or record.submitted_at,
        bytes=size,
        reason=reason,
    )
