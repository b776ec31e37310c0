"""Coarse tiles come from the levels an OME-Zarr plate stores, else are computed.

The oracle for a stored level is the stored array itself: its pixels are
overwritten with a pattern no downsampling makes, so a tile equal to the
pattern can only have been read from it. Plates without a matching level
(ImageXpress; an odd size whose stored level rounds the other way) must give
exactly what the on-the-fly path gives: the block mean of the full plane.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from raw_client import RawClient
from server_process import ServerProcess

from openhcs_nb.plates import open_plate
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate
from openhcs_nb.protocol import Hello, unpack_array
from openhcs_nb.protocol.messages import Tile, TileReply
from openhcs_nb.server._stored_levels import StoredLevels
from openhcs_nb.server.tiles import block_mean, level_shapes


def _spec(shape: tuple[int, int]) -> SyntheticPlateSpec:
    return SyntheticPlateSpec(
        rows=1,
        columns=1,
        fields=1,
        channels=("DAPI", "GFP"),
        shape=shape,
        seed=11,
        min_nuclei=4,
        max_nuclei=8,
    )


def _pattern(array: zarr.Array) -> np.ndarray:
    """Write a pattern no block mean gives into a stored level; return it."""
    values = np.arange(np.prod(array.shape), dtype=np.uint64) * 7919 % 65521
    pattern = values.reshape(array.shape).astype(array.dtype)
    array[...] = pattern
    return pattern


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A server over three plates, with patterns written into stored levels."""
    base = tmp_path_factory.mktemp("levels")
    root = base / "plates"
    generate_plate(_spec((256, 256)), root / "levels.ome.zarr")
    generate_plate(_spec((250, 250)), root / "odd.ome.zarr")
    generate_plate(_spec((256, 256)), root / "plain", format="imagexpress")
    patterns = {
        (name, level): _pattern(
            zarr.open_array(str(root / name / "A" / "1" / "0" / str(level)), mode="r+")
        )
        for name in ("levels.ome.zarr", "odd.ome.zarr")
        for level in (1, 2)
    }
    server = ServerProcess(base / "server", root).start()
    client = RawClient(server.address)
    client.call(Hello(rid=client.rid(), client="test/0"))
    yield client, root, patterns
    client.close()
    server.kill()


def _tile(client: RawClient, plate: str, name: str, **where: int) -> np.ndarray:
    msg = Tile(rid=client.rid(), plate=plate, well="A01", name=name, **where)
    reply, buffers = client.call(msg)
    assert isinstance(reply, TileReply), reply
    return np.array(unpack_array(reply.images[0], buffers))


def test_when_a_plate_stores_a_level_then_its_tiles_are_slices_of_it(served) -> None:
    client, _root, patterns = served
    gfp = 1  # channel axis index of GFP in (t, c, z, y, x)
    for level in (1, 2):
        stored = patterns["levels.ome.zarr", level][0, gfp, 0]
        tile = _tile(client, "levels.ome.zarr", "image/GFP", level=level, size=48, tx=1)
        np.testing.assert_array_equal(tile, stored[0:48, 48:96])
    edge = _tile(client, "levels.ome.zarr", "image/DAPI", level=1, size=48, ty=2, tx=2)
    np.testing.assert_array_equal(
        edge, patterns["levels.ome.zarr", 1][0, 0, 0, 96:128, 96:128]
    )


def test_when_no_stored_level_matches_then_tiles_are_computed_as_before(
    served,
) -> None:
    client, root, patterns = served
    odd = open_plate(root / "odd.ome.zarr").read_image("A01", 0, 1)
    assert level_shapes(odd.shape)[2] == (63, 63)  # stored level 2 is 62 x 62
    tile = _tile(client, "odd.ome.zarr", "image/GFP", level=2, size=64)
    np.testing.assert_array_equal(tile, block_mean(odd, 4))
    half = _tile(client, "odd.ome.zarr", "image/GFP", level=1, size=64, ty=1)
    np.testing.assert_array_equal(
        half, patterns["odd.ome.zarr", 1][0, 1, 0, 64:125, :64]
    )
    plain = open_plate(root / "plain").read_image("A01", 0, 1)
    for level in (1, 2):
        tile = _tile(client, "plain", "image/GFP", level=level, size=32, tx=1)
        computed = block_mean(plain, 2**level)
        np.testing.assert_array_equal(tile, computed[0:32, 32:64])


def test_when_a_zarr_v3_plate_stores_levels_then_they_are_found(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.ome.zarr"
    generate_plate(_spec((256, 256)), path, ome_zarr_version="0.5")
    plate = open_plate(path)
    levels = StoredLevels().levels(plate, "A01", 0, level_shapes(plate.shape))
    assert sorted(levels) == [1, 2]
    stored = StoredLevels().plane(plate, "A01", 0, 1, 2, level_shapes(plate.shape))
    level2 = zarr.open_array(str(path / "A" / "1" / "0" / "2"), mode="r")
    np.testing.assert_array_equal(stored, level2[0, 1, 0])


def test_when_a_stored_scale_is_not_a_halving_then_that_level_is_not_used(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scaled.ome.zarr"
    generate_plate(_spec((256, 256)), path)
    group = zarr.open_group(str(path / "A" / "1" / "0"), mode="r+")
    multiscales = group.attrs["multiscales"]
    multiscales[0]["datasets"][2]["coordinateTransformations"][0]["scale"] = [
        1.0,
        1.0,
        1.0,
        3.0,
        3.0,
    ]
    group.attrs["multiscales"] = multiscales
    plate = open_plate(path)
    shapes = level_shapes(plate.shape)
    assert sorted(StoredLevels().levels(plate, "A01", 0, shapes)) == [1]
