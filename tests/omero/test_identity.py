"""Issue 8, finding 1: a joined OMERO session belongs to one user on one connection.

The old server remembered joined sessions by the ZeroMQ routing id, never tied
them to the CurveZMQ user and never forgot them. A second user connecting with
the same routing id (ids are predictable, and a client may set its own) was
treated as the first user's OMERO user. Now the session lives on the
connection's own state and is dropped when the connection goes.
"""

from __future__ import annotations

import time

import pytest
import zmq
from cli_with_double import ENV, FLAG
from multiuser import make_users
from omero_fixture import BOB

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.protocol import (
    ErrorReply,
    ExecutionsReply,
    Hello,
    HelloReply,
    ListExecutions,
    PlateInfo,
    Status,
    Submit,
    Submitted,
    decode_server,
    encode,
)

ROUTING_ID = b"shared-routing-id"


@pytest.fixture(scope="module")
def server(tmp_path_factory, omero_repo, plates_root):
    from server_process import ServerProcess

    base = tmp_path_factory.mktemp("omero-identity")
    users = make_users(base / "users", ["alice", "mallory"])
    process = ServerProcess(
        base / "server",
        plates_root,
        extra=(
            users.security_toml + "\n[omero]\nenabled = true\n"
            f'host = "double"\ndata_dir = "{omero_repo.parent}"\n'
        ),
        env=ENV,
        args=(FLAG, str(omero_repo)),
        module="cli_with_double",
    ).start()
    yield process, users
    process.kill()


class Dealer:
    """A raw DEALER with a chosen routing id and a user's keys."""

    def __init__(self, address: str, keys: tuple[bytes, bytes, bytes]) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.ROUTING_ID, ROUTING_ID)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.curve_serverkey, self.sock.curve_publickey = keys[0], keys[1]
        self.sock.curve_secretkey = keys[2]
        self.sock.connect(address)

    def call(self, msg, timeout: float = 30.0):
        self.sock.send_multipart(encode(msg))
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return decode_server(self.sock.recv_multipart())[0]

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def _connect_as(address: str, keys, client: str) -> tuple[Dealer, HelloReply]:
    """Connect with the shared routing id (retried until libzmq frees it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        dealer = Dealer(address, keys)
        reply = dealer.call(Hello(rid=1, client=client), timeout=2)
        if isinstance(reply, HelloReply):
            return dealer, reply
        dealer.close()  # the id was still taken: try again
    raise AssertionError("could not connect with the shared routing id")


def test_when_mallory_reuses_the_routing_id_of_alices_omero_connection_then_she_gets_nothing(
    server,
):
    process, users = server
    alice, _ = _connect_as(process.address, users.raw_keys("alice"), "alice")
    joined = alice.call(Hello(rid=2, client="alice", omero_session=BOB))
    assert isinstance(joined, HelloReply) and joined.omero_user == "bob"
    submitted = alice.call(
        Submit(
            rid=3, pipeline_code=nuclei_count_pipeline().to_code(), plate="omero:101"
        )
    )
    assert isinstance(submitted, Submitted), submitted
    alice.close()

    mallory, hello = _connect_as(process.address, users.raw_keys("mallory"), "m")
    try:
        assert hello.user == "mallory" and hello.omero_user is None
        listed = mallory.call(ListExecutions(rid=4))
        assert isinstance(listed, ExecutionsReply) and listed.executions == []
        status = mallory.call(Status(rid=5, execution_id=submitted.execution_id))
        assert isinstance(status, ErrorReply) and status.code == "unknown_execution"
        plate = mallory.call(PlateInfo(rid=6, plate="omero:101"))
        assert isinstance(plate, ErrorReply) and plate.code == "session_invalid"
        assert plate.remote_traceback is None
    finally:
        mallory.close()
