"""Who gets the next free worker: the scheduler's picking policy, without threads.

The rules, all decided here and nowhere else:

- **Admission.** At most ``max_concurrent`` executions run at once, and at most
  ``max_running_per_user`` of one user. When a slot is free, the waiting
  execution of the user with the fewest running ones goes first (ties in
  submission order), so a user at their limit never blocks anyone else.
- **Wells** are shared round-robin across *users* first (the user served least
  recently goes next), then across that user's running executions. Twenty runs
  of one user therefore count as one turn against another user's single run.
- **Previews** go to the next free worker, ahead of plate wells, round-robin
  across users. While plate wells wait, previews hold at most
  ``max(1, workers - 1)`` workers, so a flood of previews cannot stop plates.
- **Quota.** A user has at most ``max_previews_per_user`` previews queued or
  running; one more raises :class:`QuotaExceededError`.

The policy holds no lock and starts no thread: the scheduler calls it under its
own condition variable, and the tests call it directly.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from openhcs_nb.server.errors import QuotaExceededError


class Schedulable(Protocol):
    """What the policy reads of an execution."""

    user: str
    pending: deque[str]
    cancelled: bool


class HasUser(Protocol):
    """What the policy reads of a preview."""

    user: str


E = TypeVar("E", bound=Schedulable)
P = TypeVar("P", bound=HasUser)


@dataclass(frozen=True)
class SchedulerLimits:
    """The per-user limits and time limits the scheduler enforces.

    A time limit of 0 means none. ``timeout_grace_s`` is how long a timed-out
    worker gets to come back from the interrupt before it is killed.
    """

    max_running_per_user: int = 2
    max_previews_per_user: int = 2
    well_timeout_s: float = 1800.0
    preview_timeout_s: float = 120.0
    timeout_grace_s: float = 5.0

    @classmethod
    def from_config(cls, section: Any, **overrides: Any) -> SchedulerLimits:
        """Read the ``[limits]`` config section; missing keys keep the defaults."""
        values = {
            name: getattr(section, name, default) for name, default in _DEFAULTS.items()
        }
        values.update(overrides)
        return cls(**values)


_DEFAULTS: dict[str, Any] = {
    name: getattr(SchedulerLimits, name)
    for name in SchedulerLimits.__dataclass_fields__
}


class FairPolicy(Generic[E, P]):
    """The queue of executions and previews, and the order they are served in."""

    def __init__(
        self, max_concurrent: int, workers: int, limits: SchedulerLimits
    ) -> None:
        self.max_concurrent = max(1, max_concurrent)
        self.preview_cap = max(1, workers - 1)
        self.limits = limits
        self.waiting: list[E] = []
        self.running: list[E] = []
        self._previews: dict[str, deque[P]] = {}  # per user, oldest first
        self._previews_running: Counter[str] = Counter()
        self._wells_turns = _Turns()
        self._preview_turns = _Turns()

    # -- executions --------------------------------------------------------------

    def add(self, execution: E) -> int:
        """Queue an execution; returns how many wait ahead of it (0 = next)."""
        self.waiting.append(execution)
        return len(self.waiting) - 1

    def remove(self, execution: E) -> None:
        """Forget an execution (settled, cancelled or failed); frees its slot."""
        for queue in (self.waiting, self.running):
            for index, item in enumerate(queue):
                if item is execution:
                    del queue[index]
                    return

    def admit(self) -> list[E]:
        """Move waiting executions into free run slots; returns those admitted."""
        admitted: list[E] = []
        limit = max(1, self.limits.max_running_per_user)
        while self.waiting and len(self.running) < self.max_concurrent:
            counts = Counter(e.user for e in self.running)
            eligible = [e for e in self.waiting if counts[e.user] < limit]
            if not eligible:
                break
            chosen = min(eligible, key=lambda e: counts[e.user])
            self.remove(chosen)
            self.running.append(chosen)
            self._wells_turns.join(chosen.user)
            admitted.append(chosen)
        return admitted

    def wells_waiting(self) -> bool:
        """Whether a running execution has a well no worker has taken yet."""
        return any(_pickable(e) for e in self.running)

    # -- previews ----------------------------------------------------------------

    def add_preview(self, job: P) -> None:
        """Queue a preview.

        Raises
        ------
        QuotaExceededError
            The user already has ``max_previews_per_user`` previews in flight;
            nothing was queued.
        """
        limit = self.limits.max_previews_per_user
        if self.previews_in_flight(job.user) >= limit:
            raise QuotaExceededError(
                f"user {job.user!r} has {limit} previews in flight "
                f"([limits] max_previews_per_user = {limit}); wait for one"
            )
        self._previews.setdefault(job.user, deque()).append(job)
        self._preview_turns.join(job.user)

    def previews_in_flight(self, user: str) -> int:
        """The user's previews queued or running."""
        queued = len(self._previews.get(user, ()))
        return queued + self._previews_running[user]

    def preview_done(self, job: P) -> None:
        """A preview the policy handed out has ended; frees its worker share."""
        self._previews_running[job.user] -= 1
        if self._previews_running[job.user] <= 0:
            del self._previews_running[job.user]

    def drain_previews(self) -> list[P]:
        """Take every queued preview out (shutdown: they will never run)."""
        jobs = [job for queue in self._previews.values() for job in queue]
        self._previews.clear()
        return jobs

    # -- picking -----------------------------------------------------------------

    def pick(self) -> P | tuple[E, str] | None:
        """The next piece of work for a free worker, or None when there is none.

        Call :meth:`admit` first; a preview handed out must later be reported
        with :meth:`preview_done`.
        """
        busy = sum(self._previews_running.values())
        wells = self.wells_waiting()
        if any(self._previews.values()) and (not wells or busy < self.preview_cap):
            return self._take_preview()
        if wells:
            return self._take_well()
        return None

    def _take_preview(self) -> P:
        user = self._preview_turns.next_of(u for u, q in self._previews.items() if q)
        queue = self._previews[user]
        job = queue.popleft()
        if not queue:
            del self._previews[user]
        self._previews_running[user] += 1
        return job

    def _take_well(self) -> tuple[E, str]:
        user = self._wells_turns.next_of(e.user for e in self.running if _pickable(e))
        execution = next(e for e in self.running if e.user == user and _pickable(e))
        self.remove(execution)
        self.running.append(execution)  # the user's other runs go first next time
        return execution, execution.pending.popleft()


class _Turns:
    """Round-robin over users: the one served least recently goes next.

    A user never served goes before everyone served; ties go in order of arrival.
    """

    def __init__(self) -> None:
        self._clock = 0
        self._served: dict[str, int] = {}  # user -> clock at their last turn
        self._arrival: dict[str, int] = {}

    def join(self, user: str) -> None:
        self._arrival.setdefault(user, len(self._arrival))

    def next_of(self, candidates: Iterable[str]) -> str:
        """Pick from ``candidates`` (non-empty) and count it as that user's turn."""
        user = min(
            set(candidates),
            key=lambda u: (self._served.get(u, -1), self._arrival.get(u, 0)),
        )
        self._clock += 1
        self._served[user] = self._clock
        return user


def _pickable(execution: Schedulable) -> bool:
    return bool(execution.pending) and not execution.cancelled
