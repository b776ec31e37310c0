"""Mutually untrusting users of one real server: no identity takeover, no leaks.

Each user has their own CurveZMQ key. The server must learn who asks from the
key of the connection, never from the routing id (a client may choose its
own), and must send an execution's events only to subscribers its owner
authorised with the stream key.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq
from multiuser import Users, start_curve_server
from raw_client import RawClient
from server_process import ServerProcess

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.protocol import (
    Cancel,
    ErrorReply,
    ExecutionsReply,
    Fetch,
    Finished,
    Hello,
    HelloReply,
    ListExecutions,
    Status,
    StatusReply,
    Submit,
    Submitted,
    WellDone,
    encode,
    event_topic,
)
from openhcs_nb.server.audit import AuditEntry, read_audit

SMALL = "small.ome.zarr"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    """One CurveZMQ server for alice and bob, shared by this module."""
    base = tmp_path_factory.mktemp("isolation")
    server, users = start_curve_server(base, plates_root, ["alice", "bob"])
    yield server, users
    server.kill()


def _curve(sock: zmq.Socket, keys: tuple[bytes, bytes, bytes]) -> None:
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = keys


def connect(
    server: ServerProcess,
    users: Users,
    name: str,
    *,
    routing_id: bytes | None = None,
    events: bool = False,
) -> RawClient:
    """A RawClient logged in as ``name``; optionally with a chosen routing id
    and a CurveZMQ SUB socket on the event address."""
    client = RawClient(server.address, keys=users.raw_keys(name))
    if routing_id is not None:
        client.dealer.close()
        client.dealer = client.ctx.socket(zmq.DEALER)
        client.dealer.setsockopt(zmq.LINGER, 0)
        client.dealer.setsockopt(zmq.ROUTING_ID, routing_id)
        _curve(client.dealer, users.raw_keys(name))
        client.dealer.connect(server.address)
    if events:
        client.sub = client.ctx.socket(zmq.SUB)
        client.sub.setsockopt(zmq.LINGER, 0)
        _curve(client.sub, users.raw_keys(name))
        client.sub.connect(server.event_address)
    return client


def call_until_answered(client: RawClient, make, timeout: float = 30.0):
    """Send ``make(rid)`` until its reply comes back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = make(client.rid())
        client.send_frames(encode(msg))
        while client.dealer.poll(1000):
            reply, _ = client.recv()
            if reply.rid == msg.rid:
                return reply
    raise TimeoutError("the server never answered")


def connect_as(
    server: ServerProcess,
    users: Users,
    name: str,
    routing_id: bytes,
    timeout: float = 30.0,
) -> tuple[RawClient, HelloReply]:
    """A connection with ``routing_id`` whose Hello was answered.

    libzmq refuses a routing id while an earlier connection still holds it, so
    each try is a new connection, until the server has let go of the old one.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = connect(server, users, name, routing_id=routing_id)
        msg = Hello(rid=client.rid(), client=name)
        client.send_frames(encode(msg))
        if client.dealer.poll(2000):
            reply, _ = client.recv()
            assert isinstance(reply, HelloReply), reply
            return client, reply
        client.close()
    raise TimeoutError(f"no connection with routing id {routing_id!r} was served")


def submit(client: RawClient, plate: str = SMALL) -> Submitted:
    reply, _ = client.call(
        Submit(
            rid=client.rid(),
            pipeline_code=nuclei_count_pipeline().to_code(),
            plate=plate,
        )
    )
    assert isinstance(reply, Submitted), reply
    return reply


def wait_state(client: RawClient, execution_id: str, timeout: float = 90.0) -> str:
    """The execution's final state, polled with Status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply, _ = client.call(Status(rid=client.rid(), execution_id=execution_id))
        assert isinstance(reply, StatusReply), reply
        if reply.execution.state in ("done", "failed", "cancelled"):
            return reply.execution.state
        time.sleep(0.2)
    raise TimeoutError(f"{execution_id} did not finish in {timeout} s")


def audit(server: ServerProcess) -> list[AuditEntry]:
    return read_audit(server.results_root / "audit.jsonl")


def probe_alice_execution(bob: RawClient, execution_id: str) -> dict[str, object]:
    """What bob hears when he asks about alice's execution in every way."""
    out: dict[str, object] = {}
    listing, _ = bob.call(ListExecutions(rid=bob.rid()))
    assert isinstance(listing, ExecutionsReply), listing
    out["listed"] = [e.execution_id for e in listing.executions]
    for name, make in (
        ("status", lambda rid: Status(rid=rid, execution_id=execution_id)),
        ("fetch", lambda rid: Fetch(rid=rid, execution_id=execution_id)),
        ("cancel", lambda rid: Cancel(rid=rid, execution_id=execution_id)),
    ):
        reply, _ = bob.call(make(bob.rid()))
        out[name] = reply
    return out


# -- 1. identity takeover ------------------------------------------------------------


def test_when_bob_reuses_the_routing_id_alice_left_then_he_gets_nothing_of_hers(
    shared,
):
    server, users = shared
    routing_id = b"shared-routing-id-1"
    alice, hello = connect_as(server, users, "alice", routing_id)
    try:
        assert hello.user == "alice"
        execution_id = submit(alice).execution_id
    finally:
        alice.close()

    bob, hello = connect_as(server, users, "bob", routing_id)
    try:
        assert hello.user == "bob"
        seen = probe_alice_execution(bob, execution_id)
    finally:
        bob.close()

    assert execution_id not in seen["listed"]
    for name in ("status", "fetch", "cancel"):
        reply = seen[name]
        assert isinstance(reply, ErrorReply), (name, reply)
        assert reply.code == "unknown_execution", (name, reply)
        assert reply.remote_traceback is None

    again = connect(server, users, "alice")
    try:
        assert wait_state(again, execution_id) == "done"  # bob's cancel did nothing
    finally:
        again.close()

    refused = [
        e
        for e in audit(server)
        if e.execution_id == execution_id and e.outcome == "refused"
    ]
    assert {e.action for e in refused} >= {"status", "fetch", "cancel"}
    assert {e.user for e in refused} == {"bob"}


def test_when_bob_takes_the_routing_id_of_connected_alice_then_no_data_of_hers(
    shared,
):
    server, users = shared
    routing_id = b"shared-routing-id-2"
    alice, hello = connect_as(server, users, "alice", routing_id)
    assert hello.user == "alice"
    bob = connect(server, users, "bob", routing_id=routing_id)  # alice holds it
    try:
        execution_id = submit(alice).execution_id
        wanted = {
            "hello": Hello(rid=bob.rid(), client="b"),
            "status": Status(rid=bob.rid(), execution_id=execution_id),
            "fetch": Fetch(rid=bob.rid(), execution_id=execution_id),
            "cancel": Cancel(rid=bob.rid(), execution_id=execution_id),
            "list": ListExecutions(rid=bob.rid()),
        }
        for msg in wanted.values():
            bob.send_frames(encode(msg))
        # libzmq refuses the duplicate id (bob hears nothing), or bob is served
        # as bob: either way nothing of alice's reaches him.
        heard = []
        while bob.dealer.poll(2000):
            heard.append(bob.recv()[0])
        for reply in heard:
            if isinstance(reply, HelloReply):
                assert reply.user == "bob"
            elif isinstance(reply, ExecutionsReply):
                assert execution_id not in [e.execution_id for e in reply.executions]
            else:
                assert isinstance(reply, ErrorReply), reply
                assert reply.code == "unknown_execution"
        # alice keeps her connection and her run; bob's replies never reach her
        bob_rids = {m.rid for m in wanted.values()}
        status = call_until_answered(
            alice, lambda rid: Status(rid=rid, execution_id=execution_id)
        )
        assert isinstance(status, StatusReply)
        while alice.dealer.poll(200):
            assert alice.recv()[0].rid not in bob_rids
        assert wait_state(alice, execution_id) == "done"
    finally:
        alice.close()
        bob.close()
    refused = [
        e
        for e in audit(server)
        if e.execution_id == execution_id and e.outcome == "refused"
    ]
    assert {e.user for e in refused} <= {"bob"}


# -- 2. events reach only their owner -------------------------------------------------


def test_when_bob_subscribes_to_everything_or_steals_the_key_then_he_gets_no_events(
    shared,
):
    server, users = shared
    bob = connect(server, users, "bob", events=True)
    alice = connect(server, users, "alice", events=True)
    try:
        bob.subscribe()  # b"": every topic
        submitted = submit(alice)
        execution_id, key = submitted.execution_id, submitted.stream_key
        assert key, "the owner learns a stream key"
        bob.subscribe(execution_id, key)  # as if the key had been stolen
        bob.subscribe(execution_id)  # no key at all
        alice.subscribe(execution_id, key)
        live = [e for e, _ in alice.events(timeout=90.0)]
        stored, reply = alice.fetch_all(execution_id)
        leaked = []
        while bob.sub.poll(1000):
            leaked.append(bob.sub.recv_multipart())
    finally:
        alice.close()
        bob.close()

    assert leaked == []
    assert isinstance(live[-1], Finished)
    assert any(isinstance(e, WellDone) for e in live)
    assert reply.complete
    refused = [
        e
        for e in audit(server)
        if e.action == "subscribe" and e.outcome == "refused" and e.user == "bob"
    ]
    assert len(refused) >= 3, refused
    assert all(e.detail for e in refused)
    assert not [
        e
        for e in audit(server)
        if e.action == "subscribe" and e.outcome == "ok" and e.user == "bob"
    ]


def test_when_alice_subscribes_after_the_run_then_fetch_from_zero_is_gap_free(
    shared,
):
    server, users = shared
    alice = connect(server, users, "alice")
    try:
        submitted = submit(alice)
        execution_id = submitted.execution_id
        assert wait_state(alice, execution_id) == "done"
    finally:
        alice.close()

    late = connect(server, users, "alice", events=True)
    try:
        late.subscribe(execution_id, submitted.stream_key)
        stored, reply = late.fetch_all(execution_id)
    finally:
        late.close()

    seqs = [e.seq for e, _, _ in stored]
    assert seqs == list(range(1, reply.last_seq + 1))
    assert isinstance(stored[-1][0], Finished)
    wells = {e.well for e, _, _ in stored if isinstance(e, WellDone)}
    assert wells == set(submitted.wells)
    topic = event_topic(execution_id, submitted.stream_key)
    admitted = _poll_audit(
        server,
        lambda e: e.action == "subscribe" and e.outcome == "ok" and e.user == "alice",
        lambda entries: any(e.execution_id == execution_id for e in entries),
    )
    assert admitted, f"no admitted subscription of alice to {topic!r}"


def _poll_audit(server, keep, done, timeout: float = 10.0) -> list[AuditEntry]:
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in audit(server) if keep(e)]
        if done(entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)
