"""The audit log of a real server: refusals are recorded, who, where, what and why.

Every command that changes or reveals state is audited, accepted or refused,
with the authenticated user, the connection (``peer``), the command
(``action``), the ``outcome`` and a ``detail`` naming the reason. Floods of
rate-limit refusals are summarised, not written one line each.

Each test uses its own user, so the per-user limits of one test (queue quota,
command rate) never touch another's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from multiuser import Users, make_users
from raw_client import RawClient
from server_process import ServerProcess

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.protocol import (
    ErrorReply,
    Hello,
    HelloReply,
    PlateInfo,
    Status,
    Submit,
    Submitted,
    encode,
)
from openhcs_nb.server.audit import AuditEntry, read_audit

SMALL = "small.ome.zarr"
NAMES = ["alice", "bob", "quota", "junk", "plates", "flood"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    """One CurveZMQ server with a queue quota of 1 and 5 commands a second."""
    base = tmp_path_factory.mktemp("audit-trail")
    users = make_users(base / "users", NAMES)
    server = ServerProcess(
        base / "server",
        plates_root,
        extra=users.security_toml,
        limits={
            "max_queued_per_user": 1,
            "requests_per_second": 5,
            "request_burst": 5,
        },
    ).start()
    yield server, users
    server.kill()


def client_of(shared: tuple[ServerProcess, Users], name: str) -> RawClient:
    server, users = shared
    return RawClient(server.address, keys=users.raw_keys(name))


def submit_msg(client: RawClient, plate: str = SMALL) -> Submit:
    code = nuclei_count_pipeline().to_code()
    return Submit(rid=client.rid(), pipeline_code=code, plate=plate)


def lines_of(
    server: ServerProcess,
    keep: Callable[[AuditEntry], bool],
    count: int = 1,
    timeout: float = 15.0,
) -> list[AuditEntry]:
    """The audit lines ``keep`` selects, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        path = server.results_root / "audit.jsonl"
        entries = [e for e in read_audit(path) if keep(e)] if path.exists() else []
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def assert_complete(entry: AuditEntry, user: str, reason: str) -> None:
    """The line names the user, the connection and the reason."""
    assert entry.user == user, entry
    assert entry.peer, entry
    assert entry.action, entry
    assert entry.outcome, entry
    assert reason in str(entry.detail), entry


def test_when_a_user_is_over_the_queue_quota_then_the_refusal_is_audited(shared):
    server, _ = shared
    client = client_of(shared, "quota")
    try:
        first, second = submit_msg(client), submit_msg(client)
        client.send_frames(encode(first))
        client.send_frames(encode(second))
        replies = {r.rid: r for r in (client.recv()[0], client.recv()[0])}
    finally:
        client.close()
    assert isinstance(replies[first.rid], Submitted), replies
    refusal = replies[second.rid]
    assert isinstance(refusal, ErrorReply) and refusal.code == "quota_exceeded"
    [line] = lines_of(
        server,
        lambda e: e.user == "quota" and e.action == "submit" and e.outcome == "refused",
    )
    assert_complete(line, "quota", "quota_exceeded")
    assert "max_queued_per_user" in str(line.detail)


def test_when_garbage_frames_arrive_then_the_malformed_message_is_audited(shared):
    server, _ = shared
    client = client_of(shared, "junk")
    try:
        client.send_frames([b"\xc1 this is not msgpack", b"and a stray buffer"])
        reply, _ = client.recv()
    finally:
        client.close()
    assert isinstance(reply, ErrorReply), reply
    assert reply.remote_traceback is None
    [line] = lines_of(server, lambda e: e.user == "junk" and e.outcome == "refused")
    assert line.action == "malformed"
    assert_complete(line, "junk", "")
    assert line.detail


@pytest.mark.parametrize(
    ("ref", "command"),
    [("../etc", "plate_info"), ("nope.ome.zarr", "submit")],
)
def test_when_a_plate_ref_is_refused_then_the_refusal_is_audited(shared, ref, command):
    server, _ = shared
    client = client_of(shared, "plates")
    try:
        msg = (
            PlateInfo(rid=client.rid(), plate=ref)
            if command == "plate_info"
            else submit_msg(client, plate=ref)
        )
        reply, _ = client.call(msg)
    finally:
        client.close()
    assert isinstance(reply, ErrorReply), reply
    assert reply.code == "unknown_plate", reply
    lines = lines_of(
        server,
        lambda e: e.user == "plates" and e.plate == ref and e.outcome == "refused",
    )
    assert [e.action for e in lines] == [command]  # one line, not one per layer
    assert_complete(lines[0], "plates", "unknown_plate")
    if command == "submit":
        assert lines[0].pipeline_hash


def test_when_bob_asks_for_alice_execution_then_his_refusal_is_audited(shared):
    server, _ = shared
    alice, bob = client_of(shared, "alice"), client_of(shared, "bob")
    try:
        submitted, _ = alice.call(submit_msg(alice))
        assert isinstance(submitted, Submitted), submitted
        execution_id = submitted.execution_id
        reply, _ = bob.call(Status(rid=bob.rid(), execution_id=execution_id))
    finally:
        alice.close()
        bob.close()
    assert isinstance(reply, ErrorReply) and reply.code == "unknown_execution"
    [line] = lines_of(
        server, lambda e: e.execution_id == execution_id and e.outcome == "refused"
    )
    assert line.action == "status"
    assert_complete(line, "bob", "not the owner")


def test_when_a_user_floods_commands_then_refusals_are_audited_in_summary(shared):
    server, _ = shared
    client = client_of(shared, "flood")
    try:
        sent = [Hello(rid=client.rid(), client="flood") for _ in range(50)]
        for msg in sent:
            client.send_frames(encode(msg))
        replies = []
        while client.dealer.poll(2000):  # a flood is partly dropped unanswered
            replies.append(client.recv()[0])
        served = sum(isinstance(r, HelloReply) for r in replies)
        limited = [r for r in replies if isinstance(r, ErrorReply)]
        after = None
        deadline = time.monotonic() + 15.0
        while after is None and time.monotonic() < deadline:
            time.sleep(0.5)  # an honest client backs off
            reply, _ = client.call(Hello(rid=client.rid(), client="flood"))
            after = reply if isinstance(reply, HelloReply) else None
    finally:
        client.close()
    assert served >= 5  # the burst
    assert limited, replies
    assert all(r.code == "rate_limited" for r in limited), limited
    assert after is not None, "the flooding user is never served again"
    refused = len(sent) - served
    assert refused >= 30, refused
    lines = lines_of(
        server, lambda e: e.user == "flood" and e.outcome == "rate_limited"
    )
    assert 1 <= len(lines) <= 5, lines  # summarised: not one line per refusal
    for line in lines:
        assert_complete(line, "flood", "requests_per_second")
