"""Tiles' own budget and summarised audit, on a real server over loopback.

Tiles are charged to their own token bucket (``tiles_per_second``,
``tile_burst``), not to the command rate, so a pan cannot starve a Status;
tiles wait while the user's unread replies reach ``tile_bytes_in_flight``;
served tiles are audited as one summary line per field, refusals one by one.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import zmq
from raw_client import RawClient
from server_process import ServerProcess

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate
from openhcs_nb.protocol import (
    ErrorReply,
    Hello,
    Status,
    StatusReply,
    Submit,
    Submitted,
    decode_server,
    encode,
)
from openhcs_nb.protocol.messages import Tile, TileReply
from openhcs_nb.server._audit_trail import AuditTrail
from openhcs_nb.server._config_sections import WebSection
from openhcs_nb.server._tile_audit import TileAudit
from openhcs_nb.server._tile_budget import (
    TileBudget,
    TileBytesError,
    TileRateLimitedError,
)
from openhcs_nb.server.audit import AuditLog, read_audit
from openhcs_nb.server.config import ServerConfig
from openhcs_nb.server.frontends import Frontends
from openhcs_nb.server.peers import Peer
from openhcs_nb.server.rate_limit import RateLimiter, rate_bucket
from openhcs_nb.server.tiles import TileRequestError, TileServer

SMALL = "small.ome.zarr"
BURST = 5


def _hello(client: RawClient) -> None:
    reply, _ = client.call(Hello(rid=client.rid(), client="test/0"))
    assert reply.user == "local", reply


def test_when_tiles_pass_their_burst_then_they_are_refused_and_status_still_works(
    tmp_path: Path, plates_root: Path
) -> None:
    # The command bucket holds 5 tokens and barely refills; were tiles charged
    # to it, the Hello, the 2 x BURST tiles and the Submit would empty it and
    # the Status after them would be refused.
    limits = {
        "requests_per_second": 0.001,
        "request_burst": BURST,
        "tiles_per_second": 0.001,
        "tile_burst": BURST,
    }
    server = ServerProcess(
        tmp_path, plates_root, limits=limits, extra="[audit]\ntile_summary_s = 3600\n"
    ).start()
    try:
        client = RawClient(server.address)
        _hello(client)
        where = {"plate": SMALL, "well": "A01", "name": "image/DAPI", "size": 64}
        replies = [
            client.call(Tile(rid=client.rid(), **where, ty=i % 4, tx=i // 4))[0]
            for i in range(2 * BURST)
        ]
        served = [r for r in replies if isinstance(r, TileReply)]
        refused = [r for r in replies if isinstance(r, ErrorReply)]
        assert len(served) == BURST and len(refused) == BURST, replies
        for reply in refused:
            assert reply.code == "rate_limited", reply
            assert "tiles_per_second" in reply.message and "\n" not in reply.message
            assert float(reply.details["retry_after"]) > 0
        submitted, _ = client.call(
            Submit(
                rid=client.rid(),
                pipeline_code=nuclei_count_pipeline().to_code(),
                plate=SMALL,
                wells=["A01"],
            )
        )
        assert isinstance(submitted, Submitted), submitted
        status, _ = client.call(
            Status(rid=client.rid(), execution_id=submitted.execution_id)
        )
        assert isinstance(status, StatusReply), status
        client.close()
    finally:
        assert server.stop() == 0  # the open tile summary is written on the way out
    entries = read_audit(server.results_root / "audit.jsonl")
    tiles = [e for e in entries if e.action == "tile"]
    summaries = [e for e in tiles if e.outcome == "ok"]
    refusals = [e for e in tiles if e.outcome == "refused"]
    assert len(summaries) == 1, summaries
    detail = summaries[0].detail
    assert detail["well"] == "A01" and detail["site"] == 0
    assert detail["tiles"] == BURST and detail["bytes"] == BURST * 64 * 64 * 2
    assert summaries[0].plate.endswith(SMALL)
    assert len(refusals) == BURST
    assert all("rate_limited" in e.detail for e in refusals)


def test_when_a_client_does_not_read_then_tiles_wait_for_the_byte_cap(
    tmp_path: Path,
) -> None:
    root = tmp_path / "plates"
    spec = SyntheticPlateSpec(
        rows=1, columns=1, fields=1, channels=("DAPI",), shape=(1024, 1024), seed=3
    )
    generate_plate(spec, root / "big.ome.zarr", format="ome-zarr")
    limits = {"tiles_per_second": 0, "tile_bytes_in_flight": 1 << 20}
    server = ServerProcess(tmp_path / "server", root, limits=limits).start()
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.RCVHWM, 1)  # a slow reader: little is taken off the wire
    dealer.setsockopt(zmq.RCVBUF, 64 * 1024)
    dealer.connect(server.address)
    try:
        rids = itertools.count(1)
        where = {"plate": "big.ome.zarr", "well": "A01", "name": "image/DAPI"}
        count = 48  # 2 MiB each: far more than socket buffers hold
        for _ in range(count):
            dealer.send_multipart(encode(Tile(rid=next(rids), **where, size=1024)))
        replies = []
        for _ in range(count):
            assert dealer.poll(60_000), "no reply from the server"
            replies.append(decode_server(dealer.recv_multipart()))
        busy = [r for r, _ in replies if isinstance(r, ErrorReply)]
        tiles = [(r, b) for r, b in replies if isinstance(r, TileReply)]
        assert tiles and busy, [type(r).__name__ for r, _ in replies]
        assert all(r.code == "busy" for r in busy), busy
        assert all("tile_bytes_in_flight" in r.message for r in busy), busy
        assert all(np.asarray(b[0]).nbytes == 1024 * 1024 * 2 for _, b in tiles)
    finally:
        dealer.close()
        ctx.term()
        server.kill()


def test_when_unread_bytes_reach_the_cap_then_a_tile_is_refused() -> None:
    unread = {"ann": 0}
    budget = TileBudget(0, 1, 1000, lambda peer: unread[peer.user])
    ann = Peer(routing_id=b"a", user="ann", fd=1, address="127.0.0.1")
    budget.check_bytes(ann, 5000)  # nothing unread: even a big tile goes
    unread["ann"] = 600
    budget.check_bytes(ann, 400)
    with pytest.raises(TileBytesError, match="tile_bytes_in_flight = 1000"):
        budget.check_bytes(ann, 401)


def test_when_tiles_flood_past_their_burst_of_refusals_then_it_says_so() -> None:
    budget = TileBudget(0.001, 2, 0, lambda _peer: 0, clock=lambda: 0.0)
    budget.admit("ann")
    budget.admit("ann")
    flags = []
    for _ in range(4):
        with pytest.raises(TileRateLimitedError) as refused:
            budget.admit("ann")
        flags.append(refused.value.flooding)
    assert flags == [False, False, True, True]


def test_when_a_command_token_is_refunded_then_the_next_command_goes() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=0.001, burst=2, clock=lambda: now[0])
    assert limiter.take("ann") == 0.0 and limiter.take("ann") == 0.0
    assert limiter.take("ann") > 0  # the bucket is empty
    limiter.refund("ann")
    assert limiter.take("ann") == 0.0
    for _ in range(5):  # never above the burst
        limiter.refund("ann")
    assert [limiter.take("ann") == 0.0 for _ in range(3)] == [True, True, False]


def test_when_tiles_are_served_then_one_line_per_field_and_window(
    tmp_path: Path,
) -> None:
    now = [0.0]
    log = AuditLog(tmp_path / "audit.jsonl")
    audit = TileAudit(AuditTrail(log), window_s=10.0, clock=lambda: now[0])
    ann = Peer(routing_id=b"a", user="ann", fd=1, address="127.0.0.1")
    common = {"plate": "p", "execution_id": None, "level": 0}
    for i in range(30):  # a pan over two fields: no line yet
        now[0] = i * 0.1
        audit.served(ann, **common, well="A01", site=i % 2, nbytes=100)
    assert read_audit(log.path) == []
    now[0] = 10.5  # the first summary's window is over: both fields are written
    audit.served(ann, **{**common, "level": 2}, well="B02", site=0, nbytes=7)
    lines = read_audit(log.path)
    assert [(e.detail["site"], e.detail["tiles"]) for e in lines] == [(0, 15), (1, 15)]
    assert all(e.detail["bytes"] == 1500 and e.user == "ann" for e in lines)
    audit.flush()
    last = read_audit(log.path)[-1]
    assert last.detail["well"] == "B02" and last.detail["tiles"] == 1
    assert last.detail["levels"] == [2]
    log.close()


def test_when_a_front_end_asks_for_a_tile_then_its_web_users_bucket_is_refunded(
    tmp_path: Path,
) -> None:
    config = ServerConfig(web=WebSection(frontends=("web",)))
    rate = RateLimiter(rate=0.001, burst=1, clock=lambda: 0.0)
    server = SimpleNamespace(rate=rate)
    trail = AuditTrail(AuditLog(tmp_path / "audit.jsonl"))
    tiles = TileServer(SimpleNamespace(config=config, audit=trail, server=server))
    web = Peer(routing_id=b"w", user="web", fd=1, address="", omero_user="ann")
    acting = Frontends.owner_copy(web)
    bucket = rate_bucket(web, config.web.frontends)
    assert rate.take(bucket) == 0.0  # what the loop charged the connection
    bad = Tile(rid=1, well="A01", name="image/DAPI", plate="x", size=0)
    with pytest.raises(TileRequestError, match="size 0"):
        tiles.tile(bad, acting)  # refused after the tile budget took its token
    assert rate.take(bucket) == 0.0  # the command token came back
    assert rate.take(bucket) > 0  # (one token only: the bucket is empty again)
