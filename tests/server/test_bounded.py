"""Issue 8, findings 4, 5 and 8: what one user sends or leaves unread is bounded.

- Replies a peer never reads stay within its byte budget on the server (the
  rest are answered ``busy``), instead of piling up in the server's memory.
- A frame far over the command limit is refused while it arrives: libzmq drops
  the connection at its header, so it is never buffered.
- Parsing and compiling runs off the command loop: a burst of large submits by
  one user does not hold back another user's command.
"""

from __future__ import annotations

import time

import psutil
import pytest
import zmq
from multiuser import make_users
from raw_client import RawClient

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate
from openhcs_nb.protocol import (
    ErrorReply,
    Fetch,
    Finished,
    Hello,
    HelloReply,
    Status,
    Submit,
    Submitted,
    decode_server,
    encode,
)

MIB = 1 << 20


@pytest.fixture(scope="module")
def big_plates(tmp_path_factory):
    """A plates root holding a 2-well plate of 1024² fields (4 MiB per well)."""
    root = tmp_path_factory.mktemp("bigplates")
    spec = SyntheticPlateSpec(
        rows=1,
        columns=2,
        fields=1,
        channels=("DAPI", "GFP"),
        shape=(1024, 1024),
        seed=3,
        min_nuclei=20,
        max_nuclei=30,
    )
    generate_plate(spec, root / "big.ome.zarr", format="ome-zarr")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, big_plates):
    from server_process import ServerProcess

    base = tmp_path_factory.mktemp("bounded")
    users = make_users(base, ["alice", "mallory"])
    process = ServerProcess(
        base / "server",
        big_plates,
        extra=users.security_toml,
        limits={"peer_send_budget_bytes": 8 * MIB},
    ).start()
    yield process, users
    process.kill()


def _rss(server) -> int:
    return psutil.Process(server._server.process.pid).memory_info().rss


def _finished_run(client: RawClient) -> str:
    reply, _ = client.call(
        Submit(
            rid=client.rid(),
            pipeline_code=nuclei_count_pipeline().to_code(),
            plate="big.ome.zarr",
        ),
        timeout=60,
    )
    assert isinstance(reply, Submitted), reply
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        events, _ = client.fetch_all(reply.execution_id)
        if any(isinstance(e, Finished) for e, _, _ in events):
            return reply.execution_id
        time.sleep(0.3)
    raise AssertionError("the run did not finish")


def test_when_a_peer_never_reads_full_resolution_replies_then_server_memory_stays_bounded(
    server,
):
    process, users = server
    mallory = RawClient(process.address, keys=users.raw_keys("mallory"))
    alice = RawClient(process.address, keys=users.raw_keys("alice"))
    try:
        execution_id = _finished_run(mallory)
        # A reader that stops reading: tiny receive queue and kernel buffer.
        lazy = mallory.ctx.socket(zmq.DEALER)
        lazy.setsockopt(zmq.RCVHWM, 1)
        lazy.setsockopt(zmq.RCVBUF, 4096)
        server_public, public, secret = users.raw_keys("mallory")
        lazy.curve_serverkey, lazy.curve_publickey = server_public, public
        lazy.curve_secretkey = secret
        lazy.setsockopt(zmq.LINGER, 0)
        lazy.connect(process.address)
        before = _rss(process)
        for rid in range(1, 41):
            fetch = Fetch(
                rid=rid, execution_id=execution_id, since_seq=0, full_resolution=True
            )
            lazy.send_multipart(encode(fetch))
        time.sleep(5)  # let the server answer all 40, as fast as it can
        grown = _rss(process) - before
        # 40 full-resolution replies are > 300 MiB; the budget is 8 MiB.
        assert grown < 120 * MIB, f"server grew by {grown / MIB:.0f} MiB"
        # Everyone else is still served at once.
        reply, _ = alice.call(Hello(rid=alice.rid(), client="alice"), timeout=10)
        assert isinstance(reply, HelloReply)
        # The lazy reader, once it reads, finds its later requests refused busy.
        codes = []
        while lazy.poll(3000):
            reply, _ = decode_server(lazy.recv_multipart())
            codes.append(reply.code if isinstance(reply, ErrorReply) else "ok")
        assert "busy" in codes, codes
        assert codes.count("ok") < 40
    finally:
        mallory.close()
        alice.close()


def test_when_a_frame_is_far_over_the_limit_then_it_is_never_buffered(server):
    process, users = server
    mallory = RawClient(process.address, keys=users.raw_keys("mallory"))
    try:
        before = _rss(process)
        chunk = b"\0" * (60 * MIB)
        header = encode(Hello(rid=1, client="huge"))[0]
        mallory.dealer.send_multipart([header, *[chunk] * 12], copy=False)  # 720 MB
        time.sleep(3)
        grown = _rss(process) - before
        assert grown < 100 * MIB, f"server grew by {grown / MIB:.0f} MiB"
        assert not mallory.dealer.poll(1000)  # dropped: no reply to a flood
        fresh = RawClient(process.address, keys=users.raw_keys("alice"))
        try:
            reply, _ = fresh.call(Hello(rid=2, client="after"))
            assert isinstance(reply, HelloReply)
        finally:
            fresh.close()
    finally:
        mallory.close()


def _big_code(steps: int) -> str:
    body = ",\n".join(
        f'        Step(name="s{i}", func={{0: [(gaussian_blur, {{"sigma": 1.5}}), '
        f'(subtract_background, {{"radius": 40}}), threshold_otsu, fill_holes]}}, '
        'group_by="channel")'
        for i in range(steps)
    )
    return (
        "from openhcs_nb import Pipeline, Step\n"
        "from openhcs_nb.functions import (\n"
        "    fill_holes, gaussian_blur, subtract_background, threshold_otsu\n"
        ")\n\n"
        f'pipeline = Pipeline(\n    name="big",\n    steps=[\n{body}\n    ],\n)\n'
    )


def test_when_one_user_submits_large_code_then_another_users_command_is_answered_first(
    server,
):
    process, users = server
    mallory = RawClient(process.address, keys=users.raw_keys("mallory"))
    alice = RawClient(process.address, keys=users.raw_keys("alice"))
    try:
        code = _big_code(190)
        for rid in range(100, 120):  # each takes tens of ms to parse
            submit = Submit(rid=rid, pipeline_code=code, plate="no-such.ome.zarr")
            mallory.send_frames(encode(submit))
        time.sleep(0.05)
        alice.send_frames(encode(Status(rid=7, execution_id="ex-none")))
        assert alice.dealer.poll(30_000)
        answered_alice_at = time.monotonic()
        decode_server(alice.dealer.recv_multipart())
        last = 0.0
        for _ in range(20):
            assert mallory.dealer.poll(30_000)
            reply, _ = decode_server(mallory.dealer.recv_multipart())
            assert isinstance(reply, ErrorReply) and reply.code == "unknown_plate"
            last = time.monotonic()
        # On a loop that parses in line, alice waits behind all 20 submits.
        assert answered_alice_at < last
    finally:
        mallory.close()
        alice.close()
