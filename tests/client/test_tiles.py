"""The zoomable view's tile calls on Connection and Execution, on a real server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import Connection
from openhcs_nb.client.errors import RemoteError
from openhcs_nb.plates import open_plate

SMALL = "small.ome.zarr"


def _stitch(tile, levels: list[tuple[int, int]], level: int, size: int) -> np.ndarray:
    """The whole level, put together from its tiles as a viewer would."""
    h, w = levels[level]
    rows = [
        np.concatenate([tile(level, ty, tx, size) for tx in range(-(-w // size))], 1)
        for ty in range(-(-h // size))
    ]
    return np.concatenate(rows, 0)


def test_when_an_executions_tiles_are_stitched_then_they_equal_fetch_full(
    conn: Connection,
) -> None:
    execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=["A02"])
    assert execution.wait(120)
    full = execution.fetch_full("A02")
    pyramid = execution.pyramid("A02", 0)
    labels = [name for name in full if name.startswith("labels/")]
    assert labels and set(labels) <= set(pyramid)
    for name in labels:
        stitched = _stitch(
            lambda lv, ty, tx, s, n=name: execution.tile("A02", 0, n, lv, ty, tx, s),
            pyramid[name],
            0,
            100,
        )
        np.testing.assert_array_equal(stitched, full[name])
        top = len(pyramid[name]) - 1
        small = execution.tile("A02", 0, name, top, 0, 0)
        assert small.shape == pyramid[name][top]
        np.testing.assert_array_equal(small, full[name][:: 2**top, :: 2**top])


def test_when_a_plate_is_tiled_then_level0_equals_the_raw_field(
    conn: Connection, small_plate_path: Path
) -> None:
    pyramid = conn.pyramid(SMALL, "B03", 1)
    assert sorted(pyramid) == ["image/DAPI", "image/GFP"]
    assert pyramid["image/DAPI"][0] == (256, 256)
    stitched = _stitch(
        lambda lv, ty, tx, s: conn.tile(SMALL, "B03", 1, "image/GFP", lv, ty, tx, s),
        pyramid["image/GFP"],
        0,
        96,
    )
    raw = open_plate(small_plate_path).read_image("B03", 1, 1)
    np.testing.assert_array_equal(stitched, raw)


def test_when_a_tile_is_out_of_range_then_a_one_line_remote_error(
    conn: Connection,
) -> None:
    with pytest.raises(RemoteError) as caught:
        conn.tile(SMALL, "A01", 0, "image/DAPI", 0, 9, 0)
    assert "tile (9, 0) is out of range" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert conn.tile(SMALL, "A01", 0, "image/DAPI", 0, 0, 0).shape == (256, 256)
