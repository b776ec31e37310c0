"""Bounded outbound bytes: a peer that does not read cannot grow the server.

ZeroMQ's high-water marks count messages, not bytes, and a zero-copy frame
stays in the server's memory until libzmq has written it to the kernel. So
every large frame is sent with a ``MessageTracker``; a tracker is done when
libzmq let go of the bytes. The bytes of unfinished trackers are what a peer
(or the event socket) still holds in the server. A reply that would take a
peer past its budget is refused with a small ``busy`` reply instead, and an
event that would take the event socket past its budget is not published live
(it is stored already; subscribers backfill it with ``Fetch``).

Only the server's loop thread uses an :class:`Outbox`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

import zmq

#: Frames smaller than this are copied by pyzmq anyway and not tracked.
TRACK_AT = 64 * 1024


class Outbox:
    """Unreleased outbound bytes per destination, from pyzmq's trackers."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._pending: dict[Hashable, deque[tuple[zmq.MessageTracker, int]]] = {}
        self._held: dict[Hashable, int] = {}
        self.peak = 0

    def held(self, key: Hashable) -> int:
        """Bytes still held for ``key`` after releasing what libzmq let go."""
        queue = self._pending.get(key)
        if not queue:
            return 0
        while queue and queue[0][0].done:
            self._held[key] -= queue.popleft()[1]
        if not queue:
            del self._pending[key]
            return self._held.pop(key, 0)
        return self._held[key]

    def fits(self, key: Hashable, nbytes: int) -> bool:
        """Whether ``nbytes`` more may be queued for ``key`` now.

        A message larger than the whole budget is allowed when nothing else is
        held, so one big reply can still reach a peer that reads.
        """
        held = self.held(key)
        return held == 0 or held + nbytes <= self.budget

    def add(
        self, key: Hashable, tracker: zmq.MessageTracker | None, nbytes: int
    ) -> None:
        """Account a sent message that libzmq may still hold."""
        if tracker is None or nbytes < TRACK_AT or tracker.done:
            return
        self._pending.setdefault(key, deque()).append((tracker, nbytes))
        self._held[key] = self._held.get(key, 0) + nbytes
        self.peak = max(self.peak, self.total())

    def forget(self, key: Hashable) -> None:
        """Stop accounting ``key`` (its connection is gone)."""
        self._pending.pop(key, None)
        self._held.pop(key, None)

    def total(self) -> int:
        """Bytes held over every destination."""
        return sum(self._held.values())

    def sweep(self) -> None:
        """Release what libzmq let go of, for every destination."""
        for key in list(self._pending):
            self.held(key)


def frames_bytes(frames: list[object]) -> int:
    """Total length of a message's frames."""
    total = 0
    for frame in frames:
        total += memoryview(frame).nbytes  # type: ignore[arg-type]
    return total
