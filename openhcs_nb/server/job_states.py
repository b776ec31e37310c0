"""Job states: the whole state machine of executions and wells, as data.

Everything that decides which state an execution or a well may move to lives in
the two tables below, ``EXECUTION_TRANSITIONS`` and ``WELL_TRANSITIONS``, keyed by
``(current state, trigger)``. The job store (:mod:`openhcs_nb.server.jobs`)
checks every change against them and raises :class:`InvalidTransition` for
anything else; SQLite stores the enum *names*.
"""

from __future__ import annotations

from enum import Enum

from openhcs_nb.errors import OpenHCSError


class ExecutionState(Enum):
    """Where a whole execution is; stored by name."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"  # every well settled (some may have failed)
    FAILED = "failed"  # the execution as a whole failed, e.g. compile error
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the server stopped mid-run; it will resume


class ExecutionTrigger(Enum):
    """What happened to an execution."""

    START = "start"
    FINISH = "finish"
    FAIL = "fail"
    CANCEL = "cancel"
    INTERRUPT = "interrupt"
    RESUME = "resume"


class WellState(Enum):
    """Where one well of an execution is; stored by name."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WellTrigger(Enum):
    """What happened to a well."""

    START = "start"
    SUCCEED = "succeed"
    FAIL = "fail"
    CANCEL = "cancel"
    REQUEUE = "requeue"  # it was running when the server stopped


_E, _ET = ExecutionState, ExecutionTrigger
EXECUTION_TRANSITIONS: dict[tuple[ExecutionState, ExecutionTrigger], ExecutionState] = {
    (_E.QUEUED, _ET.START): _E.RUNNING,
    (_E.QUEUED, _ET.FAIL): _E.FAILED,
    (_E.QUEUED, _ET.CANCEL): _E.CANCELLED,
    (_E.RUNNING, _ET.FINISH): _E.FINISHED,
    (_E.RUNNING, _ET.FAIL): _E.FAILED,
    (_E.RUNNING, _ET.CANCEL): _E.CANCELLED,
    (_E.RUNNING, _ET.INTERRUPT): _E.INTERRUPTED,
    (_E.INTERRUPTED, _ET.RESUME): _E.QUEUED,
    (_E.INTERRUPTED, _ET.CANCEL): _E.CANCELLED,
}

_W, _WT = WellState, WellTrigger
WELL_TRANSITIONS: dict[tuple[WellState, WellTrigger], WellState] = {
    (_W.PENDING, _WT.START): _W.RUNNING,
    (_W.PENDING, _WT.FAIL): _W.FAILED,  # e.g. the well cannot be planned
    (_W.PENDING, _WT.CANCEL): _W.CANCELLED,
    (_W.RUNNING, _WT.SUCCEED): _W.DONE,
    (_W.RUNNING, _WT.FAIL): _W.FAILED,
    (_W.RUNNING, _WT.CANCEL): _W.CANCELLED,
    (_W.RUNNING, _WT.REQUEUE): _W.PENDING,
}

ACTIVE_STATES = frozenset({_E.QUEUED, _E.RUNNING, _E.INTERRUPTED})
TERMINAL_STATES = frozenset({_E.FINISHED, _E.FAILED, _E.CANCELLED})


class InvalidTransition(OpenHCSError, RuntimeError):
    """A state change the tables do not allow; nothing was written."""

    code = "invalid_transition"

    def __init__(
        self, what: str, current: Enum, trigger: Enum, reason: str | None = None
    ) -> None:
        self.current = current
        self.trigger = trigger
        target = reason or "not allowed by the state table"
        super().__init__(
            f"{what}: cannot {trigger.name} from {current.name} ({target})"
        )


class UnknownExecutionError(OpenHCSError, LookupError):
    """No execution with this id is in the store."""

    code = "unknown_execution"


def execution_transition(
    current: ExecutionState, trigger: ExecutionTrigger, what: str = "execution"
) -> ExecutionState:
    """Return the state ``trigger`` moves an execution to.

    Raises
    ------
    InvalidTransition
        When ``(current, trigger)`` is not in ``EXECUTION_TRANSITIONS``.
    """
    try:
        return EXECUTION_TRANSITIONS[current, trigger]
    except KeyError:
        raise InvalidTransition(what, current, trigger) from None


def well_transition(
    current: WellState, trigger: WellTrigger, what: str = "well"
) -> WellState:
    """Return the state ``trigger`` moves a well to.

    Raises
    ------
    InvalidTransition
        When ``(current, trigger)`` is not in ``WELL_TRANSITIONS``.
    """
    try:
        return WELL_TRANSITIONS[current, trigger]
    except KeyError:
        raise InvalidTransition(what, current, trigger) from None
