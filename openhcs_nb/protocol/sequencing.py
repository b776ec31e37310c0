"""The seq rule as a state object: deliver events once, in order; say when to backfill.

PUB/SUB may drop events, and a subscriber may join late; the server keeps
every event. So a client passes every event it receives, from SUB or from a
FetchReply, through :meth:`SeqTracker.accept`:

- ``NEXT``: the event is the next one (seq = last + 1); deliver it.
- ``DUPLICATE``: already delivered (seq <= last); drop it.
- ``GAP``: events are missing; drop this one and send
  ``Fetch(execution_id, since_seq=tracker.last_seq(execution_id))``. Feeding
  the fetched events in order closes the gap. A late joiner's first event is
  a gap from 0, so joining late needs no special case.
"""

from __future__ import annotations

import enum

from openhcs_nb.protocol.events import Event


class SeqVerdict(enum.Enum):
    """What to do with an event, given the events already delivered."""

    NEXT = "next"
    DUPLICATE = "duplicate"
    GAP = "gap"


class SeqTracker:
    """Last delivered seq per execution id (sans-IO; one per client)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def last_seq(self, execution_id: str) -> int:
        """The highest seq delivered for the execution (0 = none yet)."""
        return self._last.get(execution_id, 0)

    def accept(self, event: Event) -> SeqVerdict:
        """Judge ``event``; on ``NEXT`` it counts as delivered."""
        last = self._last.get(event.execution_id, 0)
        if event.seq <= last:
            return SeqVerdict.DUPLICATE
        if event.seq > last + 1:
            return SeqVerdict.GAP
        self._last[event.execution_id] = event.seq
        return SeqVerdict.NEXT

    def forget(self, execution_id: str) -> None:
        """Stop tracking a finished execution the client no longer follows."""
        self._last.pop(execution_id, None)
