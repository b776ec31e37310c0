"""Live key reload on a real server: SIGHUP re-reads keys, a removed key is cut off.

``authorized_keys`` is re-read on SIGHUP and whenever the file changes. A user
whose key was removed gets no more replies, loses the connections it has and
cannot open new ones; everyone else goes on as before.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import zmq
from multiuser import Users, start_curve_server
from raw_client import RawClient
from server_process import ServerProcess
from zmq.utils.monitor import recv_monitor_message

from openhcs_nb.protocol import Hello, HelloReply, encode


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    """One CurveZMQ server for alice and bob, shared by this module."""
    base = tmp_path_factory.mktemp("revocation")
    server, users = start_curve_server(base, plates_root, ["alice", "bob"])
    yield server, users
    server.kill()


@pytest.fixture
def server(shared) -> tuple[ServerProcess, Users]:
    """The shared server, with both users authorised again at the start."""
    server, users = shared
    users.write_authorized(["alice", "bob"])  # the server sees the change itself
    assert admitted(server, users, "bob")
    return server, users


def admitted(server: ServerProcess, users: Users, name: str, timeout=20.0) -> bool:
    """Whether a new connection of ``name`` is served; each try is a fresh
    connection, since one refused in its handshake may not be retried."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = RawClient(server.address, keys=users.raw_keys(name))
        try:
            if hello(client) == name:
                return True
        finally:
            client.close()
    return False


def hup(server: ServerProcess) -> None:
    assert server._server is not None and server._server.process is not None
    server._server.process.send_signal(signal.SIGHUP)


def hello(client: RawClient, wait_ms: int = 1000) -> str | None:
    """The user a Hello is answered as, or None if no answer came in time."""
    msg = Hello(rid=client.rid(), client="revocation-test")
    if not client.dealer.poll(wait_ms, zmq.POLLOUT):
        return None  # no connection the server admitted
    client.dealer.send_multipart(encode(msg), zmq.NOBLOCK)
    while client.dealer.poll(wait_ms):
        reply, _ = client.recv()
        if reply.rid == msg.rid:
            assert isinstance(reply, HelloReply), reply
            return reply.user
    return None


def hello_until_answered(client: RawClient, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        user = hello(client)
        if user is not None:
            return user
    raise TimeoutError("the server never answered")


def until_unanswered(client: RawClient, timeout: float = 15.0) -> bool:
    """Send Hellos until one goes unanswered; False if all were answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hello(client) is None:
            return True
    return False


def disconnected(monitor: zmq.Socket, timeout: float = 15.0) -> bool:
    """Whether the monitored socket's connection was closed from the other end."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not monitor.poll(int(left * 1000)):
            return False
        if recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
            return True
    return False


def test_when_sighup_then_the_server_survives_and_answers(server):
    server, users = server
    alice = RawClient(server.address, keys=users.raw_keys("alice"))
    try:
        assert hello_until_answered(alice) == "alice"
        hup(server)
        hup(server)
        assert hello_until_answered(alice) == "alice"
        fresh = RawClient(server.address, keys=users.raw_keys("alice"))
        try:
            assert hello_until_answered(fresh) == "alice"
        finally:
            fresh.close()
    finally:
        alice.close()
    assert server._server is not None and server._server.running
    deadline = time.monotonic() + 15  # the loop logs the reload on its next turn
    while "authorized keys reloaded" not in server.log():
        assert time.monotonic() < deadline, server.log()[-2000:]
        time.sleep(0.1)


def test_when_bob_is_removed_from_the_file_then_he_is_cut_off_and_alice_goes_on(
    server,
):
    server, users = server
    alice = RawClient(server.address, keys=users.raw_keys("alice"))
    bob = RawClient(server.address, keys=users.raw_keys("bob"))
    monitor = bob.dealer.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        assert hello_until_answered(alice) == "alice"
        assert hello_until_answered(bob) == "bob"

        users.write_authorized(["alice"])  # no signal: the server sees the change

        assert until_unanswered(bob), "bob's open connection is still served"
        assert disconnected(monitor), "bob's connection was not closed"
        assert hello(bob, wait_ms=2000) is None  # it reconnects, and is refused
        new_bob = RawClient(server.address, keys=users.raw_keys("bob"))
        try:
            assert hello(new_bob, wait_ms=2000) is None
        finally:
            new_bob.close()
        assert hello_until_answered(alice) == "alice"
        new_alice = RawClient(server.address, keys=users.raw_keys("alice"))
        try:
            assert hello_until_answered(new_alice) == "alice"
        finally:
            new_alice.close()
    finally:
        monitor.close()
        alice.close()
        bob.close()
    assert server._server is not None and server._server.running


def test_when_bob_is_added_back_and_sighup_then_he_connects_again(server):
    server, users = server
    users.write_authorized(["alice"])
    bob = RawClient(server.address, keys=users.raw_keys("bob"))
    try:
        assert until_unanswered(bob), "bob was never revoked"
    finally:
        bob.close()

    users.write_authorized(["alice", "bob"])
    hup(server)
    assert admitted(server, users, "bob")
