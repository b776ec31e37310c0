"""The ROMIO path rule and the byte-level decoding of ROMIO and Ice pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openhcs_nb.plates._omero_meta import OmeroImage
from openhcs_nb.plates._omero_pixels import IceSource, RomioSource, romio_path
from openhcs_nb.plates._omero_store import SharedPixelStore


@pytest.mark.parametrize(
    ("pixels_id", "relative"),
    [
        (0, "Pixels/0"),
        (999, "Pixels/999"),
        (1000, "Pixels/Dir-001/1000"),
        (12_345, "Pixels/Dir-012/12345"),
        (999_999, "Pixels/Dir-999/999999"),
        (1_234_567, "Pixels/Dir-001/Dir-234/1234567"),
        (1_000_000, "Pixels/Dir-001/Dir-000/1000000"),
        (1_234_999_001, "Pixels/Dir-001/Dir-234/Dir-999/1234999001"),
    ],
)
def test_when_pixels_id_is_sharded_then_path_follows_omero_rule(
    pixels_id: int, relative: str
) -> None:
    assert romio_path(Path("/OMERO"), pixels_id) == Path("/OMERO") / relative


def _image(dtype: str, t: int = 2, c: int = 3, z: int = 4) -> OmeroImage:
    otype = {"float32": "float", "float64": "double"}.get(dtype, dtype)
    return OmeroImage(
        well="A01",
        field=0,
        image_id=1,
        pixels_id=1_234_567,
        name="x",
        series=0,
        size_x=5,
        size_y=3,
        size_z=z,
        size_c=c,
        size_t=t,
        pixels_type=otype,
        dimension_order="XYZCT",
        fileset_id=None,
        acquisition_id=None,
        channel_names=tuple(f"C{i}" for i in range(c)),
    )


@pytest.mark.parametrize(
    "dtype",
    ["uint16", "int16", "uint8", "int32", "float32", "float64", "uint32", "int8"],
)
def test_when_romio_buffer_is_big_endian_xyzct_then_planes_decode_exactly(
    tmp_path: Path, dtype: str
) -> None:
    image = _image(dtype)
    rng = np.random.default_rng(1)
    truth = (rng.random((2, 3, 4, 3, 5)) * 100).astype(dtype)
    # Written by hand, plane by plane in XYZCT order: z fastest, then c, then t.
    with (tmp_path / "buf").open("wb") as handle:
        for t in range(2):
            for c in range(3):
                for z in range(4):
                    handle.write(
                        truth[t, c, z].astype(truth.dtype.newbyteorder(">")).tobytes()
                    )
    assert RomioSource.usable(tmp_path / "buf", image)
    source = RomioSource(tmp_path / "buf", image)
    assert np.array_equal(source.plane(3, 1, 0), truth[0, 1, 3])
    assert source.plane(3, 1, 0).dtype == np.dtype(dtype).newbyteorder("=")
    assert np.array_equal(source.field(), truth)


def test_when_romio_buffer_has_wrong_size_then_it_is_not_usable(tmp_path: Path):
    (tmp_path / "short").write_bytes(b"\0" * 10)
    assert not RomioSource.usable(tmp_path / "short", _image("uint16"))
    assert not RomioSource.usable(tmp_path / "missing", _image("uint16"))


class _Store:
    """Answers like RawPixelsStore: big-endian bytes of one plane or tile."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.tiles = 0
        self.sets: list[int] = []

    def setPixelsId(self, pixels_id, bypass, ctx=None):
        self.sets.append(pixels_id)

    def createRawPixelsStore(self):  # also the gateway that hands itself out
        return self

    def getPlane(self, z, c, t):
        plane = self.data[t, c, z]
        return plane.astype(plane.dtype.newbyteorder(">")).tobytes()

    def getTile(self, z, c, t, x, y, w, h):
        self.tiles += 1
        tile = self.data[t, c, z, y : y + h, x : x + w]
        return tile.astype(tile.dtype.newbyteorder(">")).tobytes()


def test_when_ice_returns_big_endian_bytes_then_planes_decode_exactly() -> None:
    from contextlib import nullcontext

    image = _image("uint16", t=1, c=2, z=1)
    truth = np.arange(30, dtype=np.uint16).reshape(1, 2, 1, 3, 5) * 1000
    store = _Store(truth)
    source = IceSource(image, SharedPixelStore(store), lambda what: nullcontext())
    assert np.array_equal(source.plane(0, 1, 0), truth[0, 1, 0])
    assert np.array_equal(source.field(), truth)
    assert store.sets == [image.pixels_id]  # set once while nothing moved it
    # A plane too large for one message comes in row tiles, same pixels.
    tiled = source._tiled(store, 0, 1, 0, np.dtype(">u2"), max_bytes=10)
    assert np.array_equal(tiled, truth[0, 1, 0])
    assert store.tiles == 3  # one 10-byte row per tile
