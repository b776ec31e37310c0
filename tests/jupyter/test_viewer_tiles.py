"""The viewer's tile server: pyramid and tile replies, cancel, newest first."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from openhcs_nb.jupyter._images import unpack_planes
from openhcs_nb.jupyter._viewer_tiles import (
    Pacer,
    TileServer,
    tile_grid,
    tile_source_of,
)
from openhcs_nb.jupyter.viewer import PlateViewer, build_esm


class MemoryTiles:
    """An in-memory pyramid per plane: each level halves the last by striding."""

    def __init__(self, planes: dict[str, np.ndarray], levels: int = 3) -> None:
        self.levels = {
            n: [a[:: 2**i, :: 2**i] for i in range(levels)] for n, a in planes.items()
        }
        self.calls: list[tuple[Any, ...]] = []
        self.gate: threading.Event | None = None
        self.pyramids = 0

    def pyramid(self, well: str, field: int) -> dict[str, list[tuple[int, int]]]:
        self.pyramids += 1
        if well == "Z99":
            raise LookupError("Z99 is not on this plate")
        return {n: [a.shape for a in lv] for n, lv in self.levels.items()}

    def tile(self, well, field, plane_name, level, ty, tx, size=256) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append((well, field, plane_name, level, ty, tx))
        a = self.levels[plane_name][level]
        return a[ty * size : (ty + 1) * size, tx * size : (tx + 1) * size]


def image(h: int = 600, w: int = 700) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 4000, (h, w)).astype(np.uint16)


class Replies:
    def __init__(self) -> None:
        self.items: list[tuple[dict, list[bytes]]] = []
        self.cond = threading.Condition()

    def __call__(self, content: dict, buffers: list[bytes]) -> None:
        with self.cond:
            self.items.append((content, buffers))
            self.cond.notify_all()

    def wait(self, n: int) -> list[tuple[dict, list[bytes]]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= n, 10)
            return list(self.items)


def test_when_page_asks_for_a_pyramid_then_levels_of_every_plane_come_back():
    full = image()
    replies = Replies()
    server = TileServer(MemoryTiles({"image/DAPI": full}), replies)
    assert server.handle({"type": "pyramid", "id": 1, "well": "A01", "field": 0})
    ((content, buffers),) = replies.wait(1)
    assert content["id"] == 1
    assert content["levels"] == {"image/DAPI": [[600, 700], [300, 350], [150, 175]]}
    assert buffers == []
    server.close()


def test_when_page_asks_for_an_edge_tile_then_its_pixels_are_that_crop():
    full = image()
    labels = (full > 2000).astype(np.int32)
    replies = Replies()
    server = TileServer(
        MemoryTiles({"image/DAPI": full, "labels/nuclei": labels}), replies
    )
    server.handle(
        {
            "type": "tile",
            "id": 7,
            "well": "A01",
            "field": 0,
            "level": 0,
            "ty": 2,
            "tx": 1,
        }
    )
    ((content, buffers),) = replies.wait(1)
    assert (content["level"], content["ty"], content["tx"]) == (0, 2, 1)
    planes = unpack_planes(buffers[0], content["meta"])
    assert np.array_equal(planes["DAPI"], full[512:600, 256:512])
    assert np.array_equal(planes["labels/nuclei"], labels[512:600, 256:512])
    server.close()


def test_when_a_queued_request_is_cancelled_then_it_is_never_read():
    source = MemoryTiles({"image/DAPI": image()})
    source.gate = threading.Event()
    replies = Replies()
    server = TileServer(source, replies, max_in_flight=1)
    for i in range(4):
        server.handle(
            {
                "type": "tile",
                "id": i,
                "well": "A01",
                "field": 0,
                "level": 1,
                "ty": 0,
                "tx": i % 2,
            }
        )
    # one request is being read (blocked); the others wait in the queue
    server.handle({"type": "cancel", "ids": [1, 2]})
    source.gate.set()
    got = replies.wait(2)
    ids = sorted(c["id"] for c, _ in got)
    assert 1 not in ids and 2 not in ids
    assert len(ids) == 2
    assert server.queued() == []
    server.close()


def test_when_the_source_fails_then_the_reply_is_one_line():
    replies = Replies()
    server = TileServer(MemoryTiles({"image/DAPI": image()}), replies)
    server.handle({"type": "pyramid", "id": 3, "well": "Z99", "field": 0})
    ((content, _),) = replies.wait(1)
    assert content == {
        "type": "pyramid",
        "id": 3,
        "well": "Z99",
        "field": 0,
        "error": "Z99 is not on this plate",
    }
    assert not server.handle({"type": "something else"})
    server.close()


def test_tile_grid_and_duck_typing():
    assert tile_grid((600, 700)) == (3, 3)
    assert tile_grid((256, 257)) == (1, 2)
    assert tile_source_of(MemoryTiles({})) is not None
    assert tile_source_of(object()) is None


def test_when_viewer_has_tiles_then_a_custom_message_is_answered_through_send(
    monkeypatch,
):
    full = image()
    viewer = PlateViewer(tiles=MemoryTiles({"image/DAPI": full}), interval=0.01)
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(
        viewer, "send", lambda c, buffers=None: sent.append((c, buffers))
    )
    viewer._on_msg(
        viewer,
        {
            "type": "tile",
            "id": 5,
            "well": "A01",
            "field": 0,
            "level": 2,
            "ty": 0,
            "tx": 0,
        },
        [],
    )
    import time

    deadline = time.monotonic() + 10
    while not sent:
        assert time.monotonic() < deadline
        viewer.flush()
        time.sleep(0.01)
    content, buffers = sent[0]
    planes = unpack_planes(buffers[0], content["meta"])
    assert np.array_equal(planes["DAPI"], full[::4, ::4][:256, :176])
    viewer.close()


def test_when_viewer_has_no_tiles_then_a_pyramid_request_says_there_are_none(
    monkeypatch,
):
    viewer = PlateViewer(interval=0.01)
    sent: list[dict] = []
    monkeypatch.setattr(viewer, "send", lambda c, buffers=None: sent.append(c))
    viewer._on_msg(viewer, {"type": "pyramid", "id": 2, "well": "A01", "field": 1}, [])
    viewer.flush()
    assert sent == [
        {"type": "pyramid", "id": 2, "well": "A01", "field": 1, "levels": {}}
    ]
    viewer.close()


def test_esm_joins_the_parts_without_local_imports():
    text = build_esm()
    assert "export function createWellView" in text
    assert "export default" in text
    assert 'from "./' not in text
    assert PlateViewer().get_state()["_esm"] == text


@pytest.mark.parametrize("size", [0.65, 0])
def test_pixel_size_comes_from_the_plate_when_it_has_one(size):
    class Plate:
        name, rows, columns, wells, fields = "p", ["A"], [1], ["A01"], 1
        pixel_size_um = size

    assert PlateViewer(Plate()).pixel_size == size


def test_when_calls_come_faster_than_the_rate_then_they_are_spaced():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    pacer = Pacer(10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        pacer.wait()
    assert slept == pytest.approx([0.1, 0.2, 0.3])
    now[0] = 5.0  # after a quiet spell the next call goes at once
    pacer.wait()
    assert len(slept) == 3


def test_when_many_tiles_of_a_well_are_asked_then_its_pyramid_is_asked_once():
    source = MemoryTiles({"image/DAPI": image(), "labels/nuclei": image() > 9})
    replies = Replies()
    server = TileServer(source, replies, pacer=Pacer(0))
    for i, (ty, tx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]):
        server.handle(
            {"type": "tile", "id": i, "well": "A01", "field": 0, "level": 0}
            | {"ty": ty, "tx": tx}
        )
    replies.wait(5)
    assert source.pyramids == 1
    assert len(source.calls) == 10  # one call per plane per tile
    server.close()
