"""Request bookkeeping of the DEALER, fed scripted frames (sans-IO logic)."""

from __future__ import annotations

import pytest

from openhcs_nb.client import (
    RemoteSessionInvalid,
    RemoteTimeout,
    RemoteUnknownPlate,
    ServerUnavailable,
)
from openhcs_nb.client._requests import RequestBook
from openhcs_nb.protocol import (
    ErrorReply,
    Hello,
    ListPlates,
    PlatesReply,
    decode_client,
    encode,
)


class Outcome:
    def __init__(self) -> None:
        self.replies: list = []
        self.errors: list[BaseException] = []

    def reply(self, reply, _buffers) -> None:
        self.replies.append(reply)

    def error(self, error: BaseException) -> None:
        self.errors.append(error)


def sent_rids(book: RequestBook) -> list[int]:
    rids: list[int] = []

    def send(frames) -> bool:
        rids.append(decode_client(frames)[0].rid)
        return True

    book.flush(send)
    return rids


def test_when_requests_are_added_then_each_gets_its_own_rid():
    book = RequestBook("tcp://x:1")
    out = Outcome()
    for _ in range(3):
        book.add(ListPlates(rid=0), (), 5.0, out.reply, out.error)
    rids = sent_rids(book)
    assert len(set(rids)) == 3


def test_when_reply_arrives_then_the_matching_request_gets_it():
    book = RequestBook("tcp://x:1")
    first, second = Outcome(), Outcome()
    book.add(ListPlates(rid=0), (), 5.0, first.reply, first.error)
    book.add(ListPlates(rid=0), (), 5.0, second.reply, second.error)
    rid_a, rid_b = sent_rids(book)
    book.on_frames(encode(PlatesReply(rid=rid_b, plates=["b"])))
    book.on_frames(encode(PlatesReply(rid=rid_a, plates=["a"])))
    assert [r.plates for r in first.replies] == [["a"]]
    assert [r.plates for r in second.replies] == [["b"]]
    book.on_frames(encode(PlatesReply(rid=rid_a, plates=["late"])))  # ignored
    assert len(first.replies) == 1


def test_when_error_reply_arrives_then_the_typed_error_is_raised_to_the_caller():
    book = RequestBook("tcp://x:1")
    out = Outcome()
    book.add(ListPlates(rid=0), (), 5.0, out.reply, out.error)
    (rid,) = sent_rids(book)
    book.on_frames(encode(ErrorReply(rid=rid, code="unknown_plate", message="no")))
    assert isinstance(out.errors[0], RemoteUnknownPlate)


def test_when_never_sent_by_the_deadline_then_server_unavailable():
    book = RequestBook("tcp://x:1")
    out = Outcome()
    book.add(ListPlates(rid=0), (), 0.0, out.reply, out.error)
    book.flush(lambda frames: False)  # no connection: the socket takes nothing
    book.expire(float("inf"))
    assert isinstance(out.errors[0], ServerUnavailable)
    assert not isinstance(out.errors[0], RemoteTimeout)
    assert "is it running? is the key right?" in str(out.errors[0])


def test_when_sent_but_unanswered_by_the_deadline_then_remote_timeout():
    book = RequestBook("tcp://x:1")
    out = Outcome()
    book.add(ListPlates(rid=0), (), 0.0, out.reply, out.error)
    sent_rids(book)
    book.expire(float("inf"))
    assert isinstance(out.errors[0], RemoteTimeout)
    assert "ListPlates" in str(out.errors[0])


def test_when_the_link_drops_then_only_sent_requests_fail_at_once():
    book = RequestBook("tcp://x:1")
    sent, queued = Outcome(), Outcome()
    book.add(ListPlates(rid=0), (), 5.0, sent.reply, sent.error)
    sent_rids(book)
    book.add(ListPlates(rid=0), (), 5.0, queued.reply, queued.error)
    book.connection_lost()
    assert isinstance(sent.errors[0], ServerUnavailable)
    assert "lost the connection" in str(sent.errors[0])
    assert queued.errors == []
    assert book.waiting_to_send


def test_when_session_is_invalid_then_hello_is_said_again_and_the_request_resent():
    book = RequestBook("tcp://x:1")
    book.hello = Hello(rid=0, client="test")
    out = Outcome()
    book.add(ListPlates(rid=0), (), 5.0, out.reply, out.error)
    (rid,) = sent_rids(book)
    book.on_frames(encode(ErrorReply(rid=rid, code="session_invalid", message="x")))
    frames: list = []
    book.flush(lambda f: frames.append(decode_client(f)[0]) or True)
    assert isinstance(frames[0], Hello)
    from openhcs_nb.protocol import HelloReply

    hello = HelloReply(
        rid=frames[0].rid,
        server_version="0",
        protocol_version=1,
        catalogue=[],
        gpus=[],
        workers=1,
        max_concurrent=1,
        user="u",
    )
    book.on_frames(encode(hello))
    (again,) = sent_rids(book)
    book.on_frames(encode(ErrorReply(rid=again, code="session_invalid", message="x")))
    assert out.replies == []
    assert isinstance(out.errors[0], RemoteSessionInvalid)  # retried once only


@pytest.mark.parametrize("code", ["malformed", "internal"])
def test_when_an_error_carries_no_rid_then_no_request_is_failed(code):
    book = RequestBook("tcp://x:1")
    out = Outcome()
    book.add(ListPlates(rid=0), (), 5.0, out.reply, out.error)
    sent_rids(book)
    book.on_frames(encode(ErrorReply(rid=None, code=code, message="?")))
    assert out.errors == [] and out.replies == []
