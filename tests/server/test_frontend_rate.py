"""A web front end's users each have their own command rate, on the one key."""

from __future__ import annotations

import pytest

pytest.importorskip("omero", reason="the omero extra (omero-py) is not installed")

from raw_client import RawClient
from web_server import ALICE, BOB, FRONTEND, start_web_server

from openhcs_nb.protocol import (
    ErrorReply,
    ExecutionsReply,
    Hello,
    ListExecutions,
    encode,
)


def _acting(process, users, session: str) -> RawClient:
    raw = RawClient(process.address, keys=users.raw_keys(FRONTEND))
    hello, _ = raw.call(Hello(rid=raw.rid(), client="web", omero_session=session))
    assert not isinstance(hello, ErrorReply), hello
    return raw


def test_one_web_users_burst_does_not_spend_anothers_rate(tmp_path, plates_root):
    process, users = start_web_server(
        tmp_path, plates_root, limits={"requests_per_second": 1, "request_burst": 5}
    )
    alice, bob = _acting(process, users, ALICE), _acting(process, users, BOB)
    try:
        for _ in range(15):  # a burst, sent without waiting for answers
            alice.send_frames(encode(ListExecutions(rid=alice.rid())))
        replies = []
        while True:  # a flood past its refusals is not answered at all
            try:
                replies.append(alice.recv(3)[0])
            except TimeoutError:
                break
        refused = [r for r in replies if isinstance(r, ErrorReply)]
        assert refused and {r.code for r in refused} == {"rate_limited"}
        answered, _ = bob.call(ListExecutions(rid=bob.rid()))
        assert isinstance(answered, ExecutionsReply)  # bob's own bucket
    finally:
        alice.close()
        bob.close()
        process.kill()
