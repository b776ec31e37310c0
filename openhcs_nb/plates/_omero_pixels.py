"""Reading one OMERO image's pixels by one of three paths.

Every source answers ``plane(z, c, t) -> (y, x)`` and ``field() -> (t, c, z, y, x)``
in the image's native byte order, whatever the path:

- ``original``: the imported files in the ManagedRepository, read with
  tifffile or with our own ImageXpress / OME-Zarr readers
  (:mod:`openhcs_nb.plates._omero_files` decides which).
- ``romio``: OMERO's own pixel buffer ``<data dir>/Pixels/<shards>/<pixels id>``,
  headerless, planar, XYZCT order (``Z`` varies fastest between planes), big
  endian; mapped with ``numpy.memmap`` and copied only when a plane is asked for.
- ``ice``: the RawPixelsStore service, one ``getPlane`` round trip per plane
  (tiles for planes larger than :data:`MAX_PLANE_BYTES`), big-endian bytes.
  The store is the connection's, shared with every plate of the session
  (:mod:`openhcs_nb.plates._omero_store`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from openhcs_nb.errors import PlateError
from openhcs_nb.plates._omero_meta import OmeroImage

if TYPE_CHECKING:
    from openhcs_nb.plates._omero_store import SharedPixelStore

#: Larger planes are fetched over Ice in tiles (OMERO's Ice.MessageSizeMax is 64 MiB).
MAX_PLANE_BYTES = 32 * 1024 * 1024


class PixelSource(Protocol):
    """One image's pixels by one path."""

    path: str

    def plane(self, z: int, c: int, t: int) -> np.ndarray:
        """One ``(y, x)`` plane, native byte order."""
        ...

    def field(self) -> np.ndarray:
        """Every plane, ``(t, c, z, y, x)``, native byte order."""
        ...


def romio_path(data_dir: Path, pixels_id: int) -> Path:
    """Where OMERO keeps the ROMIO pixel buffer of Pixels ``pixels_id``.

    The rule is OMERO's ``ome.io.nio.AbstractFileSystemService.getPath``
    (ome/openmicroscopy, components/romio/src/ome/io/nio/
    AbstractFileSystemService.java): divide the id by 1000 while it is above
    999, and each time prepend a ``Dir-%03d`` folder named after the quotient
    modulo 1000. So 999 -> ``Pixels/999``, 12345 -> ``Pixels/Dir-012/12345``,
    1234567 -> ``Pixels/Dir-001/Dir-234/1234567``. (That method's Javadoc
    example disagrees with its own code; the code is what the server does.)
    """
    if pixels_id < 0:
        raise ValueError(f"pixels id must be >= 0, got {pixels_id}")
    dirs: list[str] = []
    remaining = pixels_id
    while remaining > 999:
        remaining //= 1000
        dirs.insert(0, f"Dir-{remaining % 1000:03d}")
    return Path(data_dir, "Pixels", *dirs, str(pixels_id))


def _big_endian(image: OmeroImage) -> np.dtype:
    return np.dtype(image.dtype).newbyteorder(">")


class RomioSource:
    """A ROMIO buffer mapped read-only; nothing is copied until asked for."""

    path = "romio"

    def __init__(self, file: Path, image: OmeroImage) -> None:
        shape = (image.size_t, image.size_c, image.size_z, image.size_y, image.size_x)
        self._file = file
        self._native = np.dtype(image.dtype)
        self._map = np.memmap(file, dtype=_big_endian(image), mode="r", shape=shape)

    @staticmethod
    def usable(file: Path, image: OmeroImage) -> bool:
        """The buffer exists and has exactly the bytes the Pixels describe."""
        sizes = (image.size_x, image.size_y, image.size_z, image.size_c, image.size_t)
        expected = int(np.prod(sizes)) * np.dtype(image.dtype).itemsize
        try:
            return file.is_file() and file.stat().st_size == expected
        except OSError:
            return False

    def plane(self, z: int, c: int, t: int) -> np.ndarray:
        """One plane, byte-swapped into a new native array."""
        return self._map[t, c, z].astype(self._native)

    def field(self) -> np.ndarray:
        """The whole buffer, byte-swapped into a new native array."""
        return self._map[...].astype(self._native)


class IceSource:
    """Planes over Ice from the connection's RawPixelsStore (under its lock)."""

    path = "ice"

    def __init__(
        self,
        image: OmeroImage,
        shared: SharedPixelStore,
        on_error: Callable[[str], AbstractContextManager[Any]],
    ) -> None:
        self._image = image
        self._shared = shared  # sets the store to this image's pixels per read
        self._on_error = on_error  # context manager factory translating omero errors

    def plane(self, z: int, c: int, t: int) -> np.ndarray:
        """One plane by ``getPlane`` (or by tiles when it is very large)."""
        image = self._image
        dtype = _big_endian(image)
        nbytes = image.size_x * image.size_y * dtype.itemsize
        with (
            self._on_error(f"reading image {image.image_id} over Ice"),
            self._shared.reading(image.group_id, image.pixels_id) as store,
        ):
            if nbytes <= MAX_PLANE_BYTES:
                raw = store.getPlane(z, c, t)
                return _decode(raw, dtype, (image.size_y, image.size_x))
            return self._tiled(store, z, c, t, dtype)

    def _tiled(
        self,
        store: Any,
        z: int,
        c: int,
        t: int,
        dtype: np.dtype,
        max_bytes: int = MAX_PLANE_BYTES,
    ) -> np.ndarray:
        image = self._image
        rows = max(1, max_bytes // (image.size_x * dtype.itemsize))
        out = np.empty((image.size_y, image.size_x), dtype=np.dtype(image.dtype))
        for y in range(0, image.size_y, rows):
            h = min(rows, image.size_y - y)
            raw = store.getTile(z, c, t, 0, y, image.size_x, h)
            out[y : y + h] = _decode(raw, dtype, (h, image.size_x))
        return out

    def field(self) -> np.ndarray:
        """Every plane, one round trip each."""
        return stack_planes(self, self._image)


def _decode(raw: bytes, dtype: np.dtype, shape: tuple[int, int]) -> np.ndarray:
    expected = shape[0] * shape[1] * dtype.itemsize
    if len(raw) != expected:
        raise PlateError(
            f"RawPixelsStore returned {len(raw)} bytes for a {shape} {dtype} plane "
            f"({expected} expected)"
        )
    return (
        np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    )


def stack_planes(source: PixelSource, image: OmeroImage) -> np.ndarray:
    """``(t, c, z, y, x)`` assembled plane by plane from ``source``."""
    out = np.empty(
        (image.size_t, image.size_c, image.size_z, image.size_y, image.size_x),
        dtype=np.dtype(image.dtype),
    )
    for t in range(image.size_t):
        for c in range(image.size_c):
            for z in range(image.size_z):
                out[t, c, z] = source.plane(z, c, t)
    return out


class TiffSeriesSource:
    """One image in a (multi-image) OME-TIFF or plain TIFF, via tifffile.

    For OME-TIFF the image is the series with OMERO's ``Image.series`` index;
    within it, pages follow the series' own axis order (its DimensionOrder),
    so the page of ``(z, c, t)`` is found by unravelling over those axes.
    """

    path = "original"

    def __init__(self, tif: Any, series: int, image: OmeroImage) -> None:
        self._series = tif.series[series]
        self._image = image
        axes = self._series.get_axes(False)
        shape = self._series.get_shape(False)
        self._plane_axes = [
            (a, n) for a, n in zip(axes, shape, strict=True) if a not in "YXS"
        ]
        self._pages = self._series.pages

    def _page(self, z: int, c: int, t: int) -> Any:
        wanted = {"Z": z, "C": c, "T": t}
        index = 0
        for axis, size in self._plane_axes:
            index = index * size + wanted.get(axis, 0)
        return self._pages[index]

    def plane(self, z: int, c: int, t: int) -> np.ndarray:
        """One page, squeezed to ``(y, x)``."""
        data = np.asarray(self._page(z, c, t).asarray(maxworkers=1))
        return data.reshape(self._image.size_y, self._image.size_x)

    def field(self) -> np.ndarray:
        """The whole series, reordered to ``(t, c, z, y, x)``."""
        # One thread: a worker process owns one core; tifffile's default pool of
        # threads made this 3-6x slower on a 2-core machine.
        data = self._series.asarray(maxworkers=1)
        axes = self._series.axes
        for axis in "TCZ":
            if axis not in axes:
                data, axes = data[np.newaxis], axis + axes
        data = np.transpose(data, [axes.index(a) for a in "TCZYX"])
        return np.ascontiguousarray(data)


class PlateFieldSource:
    """A field of a plate opened by one of our own readers (ImageXpress, OME-Zarr)."""

    path = "original"

    def __init__(self, plate: Any, well: str, site: int, image: OmeroImage) -> None:
        self._plate = plate
        self._well = well
        self._site = site
        self._image = image

    def plane(self, z: int, c: int, t: int) -> np.ndarray:
        """One plane through the reader's ``read_image``."""
        return self._plate.read_image(self._well, self._site, c, z, t)

    def field(self) -> np.ndarray:
        """Every plane of the field."""
        return stack_planes(self, self._image)
