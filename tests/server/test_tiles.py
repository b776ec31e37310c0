"""Tiles for the zoomable well view, read from a real server over loopback."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from multiuser import Users, start_curve_server
from raw_client import RawClient
from server_process import ServerProcess

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.plates import open_plate
from openhcs_nb.protocol import (
    ErrorReply,
    Hello,
    Status,
    StatusReply,
    Submit,
    Submitted,
    unpack_array,
)
from openhcs_nb.protocol.messages import Pyramid, PyramidReply, Tile, TileReply
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server.tiles import block_mean, level_shapes

SMALL = "small.ome.zarr"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    """One server for alice and bob, and alice's finished run of well A01."""
    server, users = start_curve_server(
        tmp_path_factory.mktemp("tiles"), plates_root, ["alice", "bob"]
    )
    alice = _client(server, users, "alice")
    reply, _ = alice.call(
        Submit(
            rid=alice.rid(),
            pipeline_code=nuclei_count_pipeline().to_code(),
            plate=SMALL,
            wells=["A01"],
        )
    )
    assert isinstance(reply, Submitted), reply
    _wait_done(alice, reply.execution_id)
    yield server, users, alice, reply.execution_id
    server.kill()


def _client(server: ServerProcess, users: Users, name: str) -> RawClient:
    client = RawClient(server.address, keys=users.raw_keys(name))
    reply, _ = client.call(Hello(rid=client.rid(), client="test/0"))
    assert reply.user == name
    return client


def _wait_done(client: RawClient, execution_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        reply, _ = client.call(Status(rid=client.rid(), execution_id=execution_id))
        assert isinstance(reply, StatusReply), reply
        if reply.execution.state in ("done", "failed", "cancelled"):
            assert reply.execution.state == "done", reply
            return
        time.sleep(0.2)
    raise TimeoutError(execution_id)


def _tile(client: RawClient, **fields: object) -> np.ndarray:
    reply, buffers = client.call(Tile(rid=client.rid(), **fields))
    assert isinstance(reply, TileReply), reply
    return np.array(unpack_array(reply.images[0], buffers))


def test_when_plate_tiles_are_read_then_they_equal_crops_of_the_field(
    shared, small_plate_path: Path
) -> None:
    _server, _users, alice, _ = shared
    plane = open_plate(small_plate_path).read_image("A02", 1, 1)
    reply, _ = alice.call(Pyramid(rid=alice.rid(), plate=SMALL, well="A02", site=1))
    assert isinstance(reply, PyramidReply), reply
    assert set(reply.levels) == {"image/DAPI", "image/GFP"}
    assert reply.levels["image/GFP"] == [[256, 256], [128, 128], [64, 64]]
    where = {"plate": SMALL, "well": "A02", "site": 1, "name": "image/GFP"}
    edge = _tile(alice, **where, level=0, ty=2, tx=1, size=100)
    np.testing.assert_array_equal(edge, plane[200:256, 100:200])
    # Level 1 is the plate's stored level now (test_stored_levels.py proves the
    # source); the synthetic writer stores exact 2 x 2 block means.
    blocks = plane.astype(np.float64).reshape(128, 2, 128, 2).mean(axis=(1, 3))
    half = np.rint(blocks).astype(plane.dtype)
    tile = _tile(alice, **where, level=1, ty=0, tx=1, size=100)
    np.testing.assert_array_equal(tile, half[0:100, 100:128])


def test_when_a_finished_well_is_tiled_then_labels_are_subsampled(
    shared, small_plate_path: Path
) -> None:
    server, _users, alice, execution_id = shared
    labels = ResultsStore(server.results_root / execution_id).read_labels("A01")
    (name, full), *_ = labels.items()
    reply, _ = alice.call(
        Pyramid(rid=alice.rid(), execution_id=execution_id, well="A01")
    )
    assert isinstance(reply, PyramidReply), reply
    assert f"labels/{name}" in reply.levels and "image/DAPI" in reply.levels
    where = {
        "execution_id": execution_id,
        "well": "A01",
        "name": f"labels/{name}",
        "size": 128,
    }
    level1 = _tile(alice, **where, level=1, ty=0, tx=0)
    np.testing.assert_array_equal(level1, full[::2, ::2])
    assert set(np.unique(level1)) <= set(np.unique(full))
    raw = _tile(alice, **{**where, "name": "image/DAPI"}, level=0, ty=1, tx=0)
    dapi = open_plate(small_plate_path).read_image("A01", 0, 0)
    np.testing.assert_array_equal(raw, dapi[128:256, 0:128])


def test_when_bob_asks_for_alices_tiles_then_he_is_refused(shared) -> None:
    server, users, _alice, execution_id = shared
    bob = _client(server, users, "bob")
    for msg in (
        Pyramid(rid=bob.rid(), execution_id=execution_id, well="A01"),
        Tile(rid=bob.rid(), execution_id=execution_id, well="A01", name="image/DAPI"),
    ):
        reply, buffers = bob.call(msg)
        assert isinstance(reply, ErrorReply), reply
        assert reply.code == "unknown_execution" and not buffers


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"well": "H12"}, "unknown_well", "H12"),
        ({"site": 5}, "plate_error", "field 5"),
        ({"level": 3}, "plate_error", "level 3"),
        ({"ty": 1, "size": 256}, "plate_error", "tile (1, 0)"),
        ({"size": 2048}, "malformed", "size 2048"),
        ({"name": "image/RFP"}, "plate_error", "image/RFP"),
        ({"plate": None}, "malformed", "exactly one"),
        ({"plate": "../outside.ome.zarr"}, "unknown_plate", "outside.ome.zarr"),
    ],
)
def test_when_a_tile_request_is_bad_then_one_clear_line_and_serving_goes_on(
    shared, fields: dict[str, object], code: str, words: str
) -> None:
    _server, _users, alice, _ = shared
    base = {"plate": SMALL, "well": "A01", "name": "image/DAPI"}
    reply, _ = alice.call(Tile(rid=alice.rid(), **{**base, **fields}))
    assert isinstance(reply, ErrorReply), reply
    assert reply.code == code and words in reply.message
    assert "\n" not in reply.message and not reply.remote_traceback
    assert _tile(alice, **base, size=32).shape == (32, 32)


def test_level_shapes_halve_rounding_up_to_a_thumbnail() -> None:
    assert level_shapes((300, 130)) == [(300, 130), (150, 65), (75, 33), (38, 17)]
    assert level_shapes((40, 40)) == [(40, 40)]


def test_block_mean_averages_partial_edge_blocks() -> None:
    plane = np.array([[0, 2, 4], [2, 4, 8]], dtype=np.uint16)
    np.testing.assert_array_equal(block_mean(plane, 2), [[2, 6]])
