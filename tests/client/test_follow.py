"""The follower's seq logic, fed scripted events (no sockets: it is sans-IO)."""

from __future__ import annotations

from openhcs_nb.client._follow import Follower
from openhcs_nb.protocol import Finished, Progress, WellDone

EX = "ex-1"


def well(seq: int) -> WellDone:
    return WellDone(execution_id=EX, seq=seq, time=0.0, well=f"A{seq:02d}")


def finished(seq: int) -> Finished:
    return Finished(
        execution_id=EX, seq=seq, time=0.0, state="finished", done=0, failed=0, total=0
    )


def seqs(deliveries) -> list[int]:
    return [event.seq for event, _ in deliveries]


def caught_up(follower: Follower, last_seq: int = 0) -> Follower:
    """A follower whose initial fetch from 0 has returned ``1..last_seq``."""
    assert follower.fetch_request() == 0
    follower.on_fetched([well(s) for s in range(1, last_seq + 1)], [], last_seq)
    return follower


def test_when_new_then_it_first_fetches_from_zero():
    follower = Follower(EX)
    assert follower.fetch_request() == 0
    assert follower.fetching
    assert follower.fetch_request() is None


def test_when_events_arrive_in_order_then_each_is_delivered_at_once():
    follower = caught_up(Follower(EX))
    assert seqs(follower.on_published(well(1), [])) == [1]
    assert seqs(follower.on_published(well(2), [])) == [2]
    assert follower.last_seq == 2
    assert follower.fetch_request() is None


def test_when_duplicate_arrives_then_it_is_dropped():
    follower = caught_up(Follower(EX), 3)
    assert follower.on_published(well(2), []) == []
    assert follower.on_published(well(3), []) == []
    assert follower.last_seq == 3


def test_when_gap_then_event_is_held_and_a_fetch_from_last_seq_is_wanted():
    follower = caught_up(Follower(EX), 2)
    assert follower.on_published(well(5), []) == []
    assert follower.fetch_request() == 2
    delivered = follower.on_fetched([well(3), well(4)], [], 5)
    assert seqs(delivered) == [3, 4, 5]
    assert follower.fetch_request() is None


def test_when_events_arrive_during_a_fetch_then_they_follow_the_fetched_ones():
    follower = Follower(EX)
    assert follower.fetch_request() == 0
    assert follower.on_published(well(3), []) == []
    assert follower.on_published(well(4), []) == []
    delivered = follower.on_fetched([well(1), well(2), well(3)], [], 3)
    assert seqs(delivered) == [1, 2, 3, 4]


def test_when_fetch_reply_is_limited_then_another_fetch_continues_from_it():
    follower = Follower(EX)
    assert follower.fetch_request() == 0
    assert seqs(follower.on_fetched([well(1), well(2)], [], 10)) == [1, 2]
    assert follower.fetch_request() == 2


def test_when_fetch_brings_nothing_new_then_no_immediate_refetch():
    follower = caught_up(Follower(EX), 2)
    follower.on_published(well(9), [])
    assert follower.fetch_request() == 2
    assert follower.on_fetched([], [], 2) == []
    assert follower.fetch_request() is None
    follower.request_fetch()
    assert follower.fetch_request() == 2


def test_when_fetch_fails_then_held_events_wait_for_the_next_fetch():
    follower = caught_up(Follower(EX), 1)
    follower.on_published(well(3), [])
    assert follower.fetch_request() == 1
    follower.on_fetch_failed()
    assert not follower.fetching
    follower.request_fetch()
    assert follower.fetch_request() == 1
    assert seqs(follower.on_fetched([well(2)], [], 3)) == [2, 3]


def test_when_finished_is_delivered_then_nothing_more_is_and_no_fetch_is_wanted():
    follower = caught_up(Follower(EX), 1)
    assert seqs(follower.on_published(finished(2), [])) == [2]
    assert follower.finished
    assert follower.on_published(well(3), []) == []
    follower.request_fetch()
    assert follower.fetch_request() is None


def test_when_every_order_of_arrival_then_each_event_is_delivered_once_in_order():
    import itertools

    events = [
        well(1),
        Progress(execution_id=EX, seq=2, time=0.0, done=1, failed=0, total=3),
        well(3),
        finished(4),
    ]
    for order in itertools.permutations(events):
        follower = Follower(EX)
        assert follower.fetch_request() == 0
        got = seqs(follower.on_fetched([], [], 0))
        for event in order:
            got += seqs(follower.on_published(event, []))
            since = follower.fetch_request()
            if since is not None:  # the server has everything published so far
                stored = [
                    e
                    for e in events
                    if e.seq > since and e.seq <= max(x.seq for x in order)
                ]
                got += seqs(follower.on_fetched(stored, [], len(events)))
        assert got == [1, 2, 3, 4], order
        assert follower.finished
