"""The seq rule: deliver once, in order; a gap or a late join is closed by Fetch."""

from __future__ import annotations

from openhcs_nb.protocol import (
    Fetch,
    FetchReply,
    Progress,
    SeqTracker,
    SeqVerdict,
    decode_client,
    decode_event_frames,
    decode_server,
    encode,
    event_frames,
)


def _event(seq: int, execution_id: str = "ex-1") -> Progress:
    return Progress(
        execution_id=execution_id, seq=seq, time=float(seq), done=seq, failed=0, total=9
    )


class _Server:
    """A stand-in for the server's durable event log, speaking only frames."""

    def __init__(self, events):
        self.events = events

    def handle(self, frames):
        fetch, _ = decode_client(frames)
        assert isinstance(fetch, Fetch)
        found = [e for e in self.events if e.seq > fetch.since_seq][: fetch.limit]
        reply = FetchReply(
            rid=fetch.rid,
            execution_id=fetch.execution_id,
            events=found,
            last_seq=self.events[-1].seq,
            complete=False,
        )
        return encode(reply)


def test_when_events_arrive_in_order_then_each_is_next_and_repeats_are_duplicates():
    tracker = SeqTracker()
    assert [tracker.accept(_event(s)) for s in (1, 2, 2, 1, 3)] == [
        SeqVerdict.NEXT,
        SeqVerdict.NEXT,
        SeqVerdict.DUPLICATE,
        SeqVerdict.DUPLICATE,
        SeqVerdict.NEXT,
    ]
    assert tracker.last_seq("ex-1") == 3


def test_when_executions_interleave_then_each_is_tracked_alone():
    tracker = SeqTracker()
    assert tracker.accept(_event(1, "a")) is SeqVerdict.NEXT
    assert tracker.accept(_event(1, "b")) is SeqVerdict.NEXT
    tracker.forget("a")
    assert tracker.last_seq("a") == 0
    assert tracker.last_seq("b") == 1


def test_when_pub_drops_events_then_fetch_since_last_seq_fills_the_gap():
    log = [_event(s) for s in range(1, 8)]
    server = _Server(log)
    tracker = SeqTracker()
    delivered = []
    for seq in (1, 2, 5, 6, 7):  # PUB dropped 3 and 4
        event, _ = decode_event_frames(event_frames(log[seq - 1]))
        verdict = tracker.accept(event)
        if verdict is SeqVerdict.NEXT:
            delivered.append(event.seq)
        elif verdict is SeqVerdict.GAP:
            since = tracker.last_seq("ex-1")
            reply, _ = decode_server(
                server.handle(
                    encode(Fetch(rid=1, execution_id="ex-1", since_seq=since))
                )
            )
            for fetched in reply.events:
                if tracker.accept(fetched) is SeqVerdict.NEXT:
                    delivered.append(fetched.seq)
    assert delivered == [1, 2, 3, 4, 5, 6, 7]


def test_when_client_joins_late_then_its_first_event_is_a_gap_from_zero():
    tracker = SeqTracker()
    assert tracker.accept(_event(4)) is SeqVerdict.GAP
    assert tracker.last_seq("ex-1") == 0
