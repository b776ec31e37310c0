"""The records the job store hands out: plain frozen values, no behaviour.

Split from :mod:`openhcs_nb.server.jobs` so the store module holds only the
store; ``jobs`` re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openhcs_nb.server.job_states import ExecutionState, WellState


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One row of ``executions``, as stored."""

    id: str
    user: str
    plate: str
    pipeline_code: str
    pipeline_hash: str
    options: Mapping[str, Any]
    state: ExecutionState
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    last_seq: int
    total: int
    done: int
    failed: int
    cancelled: int
    omero_user: str | None = None
    stream_key: str = ""

    @property
    def settled(self) -> bool:
        """Whether every well has reached DONE, FAILED or CANCELLED."""
        return self.done + self.failed + self.cancelled == self.total


@dataclass(frozen=True, slots=True)
class WellRecord:
    """One row of ``wells``; ``summary`` is the msgpack bytes given at DONE.

    ``attempt`` counts starts: 0 while never started, 2 after a crash and restart.
    """

    well: str
    state: WellState
    attempt: int
    started_at: float | None
    finished_at: float | None
    summary: bytes | None
    error: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One committed event: publish ``payload`` (+ ``arrays``) exactly as stored."""

    execution_id: str
    seq: int
    kind: str
    payload: bytes
    arrays: bytes | None


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event to log with a state change; ``payload`` may be ``seq -> bytes``."""

    kind: str
    payload: bytes | Callable[[int], bytes]
    arrays: bytes | None = None


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What :meth:`JobStore.cancel` did; ``running_wells`` must still be stopped."""

    running_wells: tuple[str, ...]
    cancelled_wells: int
    event: StoredEvent | None
