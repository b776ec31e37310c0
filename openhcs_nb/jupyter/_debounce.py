"""Run work once the requests stop: the builder's live-preview trigger.

Each ``request(arg)`` restarts a timer; when ``delay`` seconds pass without a
newer request, ``work(arg)`` runs on the timer's own (background) thread and
its result, or the exception it raised, is handed to
``deliver((generation, result))``. Generations number the requests, so the
receiver can drop a result whose request was superseded while it ran
(``is_current``). Nothing here touches widgets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

A = TypeVar("A")


class Debouncer(Generic[A]):
    """Collapse bursts of requests into one call of ``work`` with the last one."""

    def __init__(
        self,
        delay: float,
        work: Callable[[A], Any],
        deliver: Callable[[tuple[int, Any]], None],
    ) -> None:
        self._delay = delay
        self._work = work
        self._deliver = deliver
        self._cond = threading.Condition()
        self._generation = 0
        self._timer: threading.Timer | None = None
        self._running = 0

    def request(self, arg: A) -> int:
        """Schedule ``work(arg)`` after the delay, replacing any pending request."""
        with self._cond:
            self._generation += 1
            generation = self._generation
            if self._timer is not None:
                self._timer.cancel()
            timer = threading.Timer(self._delay, self._fire, (generation, arg))
            timer.daemon = True
            self._timer = timer
            timer.start()
        return generation

    def cancel(self) -> None:
        """Drop the pending request; results still running become stale."""
        with self._cond:
            self._generation += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._cond.notify_all()

    def is_current(self, generation: int) -> bool:
        """Whether ``generation`` is the newest request."""
        return generation == self._generation

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._timer is None and self._running == 0, timeout
            )

    def _fire(self, generation: int, arg: A) -> None:
        with self._cond:
            if generation != self._generation:
                return  # superseded while the timer was being cancelled
            self._timer = None
            self._running += 1
        try:
            try:
                result: Any = self._work(arg)
            except Exception as exc:
                result = exc
            self._deliver((generation, result))
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
