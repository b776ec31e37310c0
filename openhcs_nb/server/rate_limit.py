"""A token bucket per user: a burst is served, a flood is refused cheaply.

Each command costs one token; a user's bucket refills at ``rate`` tokens per
second up to ``burst``. A refusal says when the next token arrives, so a client
can back off instead of hammering. ``rate = 0`` turns the limit off.

A client that keeps sending after ``burst`` refusals within one second is
flooding: its further commands are dropped unanswered, which costs the server
nothing but reading them (honest clients wait for ``retry_after`` instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any


class RateLimiter:
    """Per-user token buckets; used by the server's loop thread only."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._refused: dict[str, tuple[float, int]] = {}  # second started, count

    def take(self, user: str) -> float:
        """Spend one token of ``user``: 0.0 when allowed, else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(user, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[user] = (tokens - 1.0, now)
            return 0.0
        self._buckets[user] = (tokens, now)
        since, count = self._refused.get(user, (now, 0))
        if now - since >= 1.0:
            since, count = now, 0
        self._refused[user] = (since, count + 1)
        return (1.0 - tokens) / self.rate

    def refund(self, user: str) -> None:
        """Give back the token a command spent: it is charged elsewhere (tiles)."""
        if self.rate <= 0 or user not in self._buckets:
            return
        tokens, last = self._buckets[user]
        self._buckets[user] = (min(float(self.burst), tokens + 1.0), last)

    def flooding(self, user: str) -> bool:
        """Whether ``user`` was refused more than ``burst`` times this second."""
        since, count = self._refused.get(user, (0.0, 0))
        return self._clock() - since < 1.0 and count > self.burst


def rate_bucket(peer: Any, frontends: Collection[str]) -> str:
    """Whose command rate a message from ``peer`` counts against.

    A web front end serves many OMERO users on one key: each user it has
    joined a session for gets a bucket of their own, so one web user's
    burst cannot starve the others. Everyone else counts as their key.
    """
    if peer.omero_user and peer.user in frontends:
        return f"{peer.user}/{peer.omero_user}"
    return str(peer.user)
