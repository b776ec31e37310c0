"""Following one execution's events: every event once, in seq order (sans-IO).

Events reach a client two ways: published on SUB (fast, may be dropped) and
returned by ``Fetch(since_seq=N)`` (durable). :class:`Follower` merges both:

- An event from SUB is delivered at once when it is the next seq and no fetch
  is open. Otherwise it is *held* (a gap, or a fetch in flight), and released
  in seq order once the fetch has filled everything before it.
- A fetch is wanted at the start (a late joiner has a gap from 0), on a gap,
  when held events remain after a fetch, when the server says more are stored
  (``last_seq``), and when the caller asks for a safety fetch (silence).
- Only one fetch is in flight at a time; :meth:`fetch_request` hands out the
  ``since_seq`` to send and marks it in flight.
- The stream is finished once the ``Finished`` event has been delivered.

No IO and no clock here: the caller sends fetches and decides when silence
is long enough for a safety fetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openhcs_nb.protocol import Event, Finished, SeqTracker, SeqVerdict

#: An event with the buffers of the message that carried it.
Delivery = tuple[Event, Sequence[Any]]


class Follower:
    """Seq state of one execution: what to deliver now, and when to fetch."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self._tracker = SeqTracker()
        self._held: dict[int, Delivery] = {}
        self._want_fetch = True
        self.fetching = False
        self.finished = False

    @property
    def last_seq(self) -> int:
        """The highest seq delivered so far (0 = none)."""
        return self._tracker.last_seq(self.execution_id)

    @property
    def wants_fetch(self) -> bool:
        """Whether a fetch should be sent as soon as none is in flight."""
        return self._want_fetch and not self.finished

    def on_published(self, event: Event, buffers: Sequence[Any]) -> list[Delivery]:
        """Events to deliver now that ``event`` arrived on SUB (maybe none)."""
        if self.finished or event.seq <= self.last_seq:
            return []
        if self.fetching or event.seq != self.last_seq + 1:
            self._held.setdefault(event.seq, (event, buffers))
            if not self.fetching:
                self._want_fetch = True
            return []
        return self._take([(event, buffers)])

    def fetch_request(self) -> int | None:
        """The ``since_seq`` of a fetch to send now, or None; marks it in flight."""
        if not self.wants_fetch or self.fetching:
            return None
        self.fetching = True
        self._want_fetch = False
        return self.last_seq

    def on_fetched(
        self, events: Sequence[Event], buffers: Sequence[Any], last_seq: int
    ) -> list[Delivery]:
        """Events to deliver from a fetch reply, then any held ones they unblock."""
        self.fetching = False
        before = self.last_seq
        out = self._take(sorted(((e, buffers) for e in events), key=_seq))
        if self.last_seq == before:
            # Nothing new: leave the retry to the caller's safety timer, so a
            # confused server cannot make us spin.
            self._want_fetch = False
        elif not self.finished and self.last_seq < last_seq:
            # More is stored than this reply held (its limit): go on at once.
            self._want_fetch = True
        return out

    def on_fetch_failed(self) -> None:
        """A fetch got no usable reply; held events wait for the next one."""
        self.fetching = False

    def request_fetch(self) -> None:
        """Ask for a safety fetch (silence, reconnect, a lost last event)."""
        if not self.finished:
            self._want_fetch = True

    def _take(self, candidates: list[Delivery]) -> list[Delivery]:
        """Deliver candidates in order, then every held event that now follows."""
        out: list[Delivery] = []
        for event, buffers in candidates:
            if self.finished:
                break
            verdict = self._tracker.accept(event)
            if verdict is SeqVerdict.NEXT:
                out.append((event, buffers))
                self.finished = isinstance(event, Finished)
            elif verdict is SeqVerdict.GAP:
                self._held.setdefault(event.seq, (event, buffers))
        while not self.finished and self.last_seq + 1 in self._held:
            event, buffers = self._held.pop(self.last_seq + 1)
            self._tracker.accept(event)
            out.append((event, buffers))
            self.finished = isinstance(event, Finished)
        for seq in [s for s in self._held if s <= self.last_seq]:
            del self._held[seq]
        if self.finished:
            self._held.clear()
        elif self._held and not self.fetching:
            self._want_fetch = True
        return out


def _seq(delivery: Delivery) -> int:
    return delivery[0].seq
