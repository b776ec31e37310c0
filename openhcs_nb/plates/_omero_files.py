"""Reading an image from its original files in OMERO's ManagedRepository.

OMERO.fs keeps every imported file as it was, at
``<managed dir>/<OriginalFile.path><OriginalFile.name>``, listed in the image's
Fileset. What the fileset holds decides the reader, first match wins:

1. a ``*.zarr`` folder with OME plate metadata -> our OME-Zarr reader;
2. an ``.HTD`` file (ImageXpress) -> our ImageXpress folder reader;
3. ``*.ome.tif(f)`` files -> tifffile, series ``Image.series`` of the first one;
4. one plain TIFF -> tifffile, pages in the Pixels' dimension order.

Anything else (vendor formats we cannot read), or a file that is missing or
does not match the Pixels' sizes and type, makes :meth:`OriginalFiles.source`
return None with the reason in ``why``, and the plate falls back to the next
path. Paths from the database are never allowed to climb out of the
repository (``..`` or absolute parts are refused); symlinks made by in-place
imports are followed.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.plates._omero_meta import OmeroImage
from openhcs_nb.plates._omero_pixels import (
    PixelSource,
    PlateFieldSource,
    TiffSeriesSource,
    stack_planes,
)

_OME_TIFF = re.compile(r"\.ome\.tiff?$", re.IGNORECASE)
_TIFF = re.compile(r"\.tiff?$", re.IGNORECASE)


class TiffPagesSource:
    """A plain TIFF whose pages are the image's planes in DimensionOrder."""

    path = "original"

    def __init__(self, tif: Any, image: OmeroImage) -> None:
        self._pages = tif.pages
        self._image = image
        sizes = {"Z": image.size_z, "C": image.size_c, "T": image.size_t}
        self._order = [(a, sizes[a]) for a in image.dimension_order[2:]]

    def plane(self, z: int, c: int, t: int) -> np.ndarray:
        """The page of ``(z, c, t)``: the first letter after XY varies fastest."""
        wanted = {"Z": z, "C": c, "T": t}
        index, stride = 0, 1
        for axis, size in self._order:
            index += wanted[axis] * stride
            stride *= size
        data = np.asarray(self._pages[index].asarray())
        return data.reshape(self._image.size_y, self._image.size_x)

    def field(self) -> np.ndarray:
        """Every page."""
        return stack_planes(self, self._image)


class OriginalFiles:
    """Opens and caches the readers of one plate's filesets."""

    def __init__(self, managed_dir: Path, files: dict[int, tuple[str, ...]]) -> None:
        self.managed_dir = Path(managed_dir)
        self._files = files
        self._tiffs: dict[Path, Any] = {}
        self._plates: dict[Path, Any] = {}
        self.why: dict[int, str] = {}  # image id -> why the original path is not used

    def close(self) -> None:
        """Close every open TIFF file."""
        for tif in self._tiffs.values():
            tif.close()
        self._tiffs.clear()
        self._plates.clear()

    def source(self, image: OmeroImage) -> PixelSource | None:
        """A reader for ``image``'s original files, or None (see ``why``)."""
        rel = self._files.get(image.fileset_id or -1, ())
        if not rel:
            return self._no(image, "its fileset lists no files")
        try:
            paths = [self._resolve(r) for r in rel]
        except ValueError as exc:
            return self._no(image, str(exc))
        try:
            return self._pick(image, paths)
        except (OSError, ValueError, OpenHCSError) as exc:
            return self._no(image, f"{type(exc).__name__}: {exc}")

    def _no(self, image: OmeroImage, why: str) -> None:
        self.why[image.image_id] = why

    def _resolve(self, rel: str) -> Path:
        parts = PurePosixPath(rel)
        if parts.is_absolute() or ".." in parts.parts:
            raise ValueError(f"refusing file path {rel!r} outside the repository")
        return self.managed_dir.joinpath(*parts.parts)

    def _pick(self, image: OmeroImage, paths: list[Path]) -> PixelSource | None:
        zarr_root = _zarr_root(paths)
        if zarr_root is not None:
            return self._plate_source(image, zarr_root, "ome-zarr")
        htd = [p for p in paths if p.suffix.lower() == ".htd"]
        if htd:
            return self._plate_source(image, htd[0].parent, "imagexpress")
        ome = [p for p in paths if _OME_TIFF.search(p.name)]
        if ome:
            tif = self._tiff(ome[0])
            if not tif.is_ome or image.series >= len(tif.series):
                return self._no(image, f"{ome[0].name} has no series {image.series}")
            series = tif.series[image.series]
            if not _fits(series.get_shape(False), series.dtype, image, whole=True):
                return self._no(
                    image,
                    f"series {image.series} of {ome[0].name} "
                    f"{series.shape} {series.dtype} does not match",
                )
            return TiffSeriesSource(tif, image.series, image)
        tiffs = [p for p in paths if _TIFF.search(p.name)]
        if len(tiffs) == 1 and len(paths) == 1:
            tif = self._tiff(tiffs[0])
            planes = image.size_z * image.size_c * image.size_t
            page = tif.pages.first
            fits = _fits(page.shape, page.dtype, image, whole=False)
            if len(tif.pages) != planes or not fits:
                return self._no(image, f"{tiffs[0].name} pages do not match the Pixels")
            return TiffPagesSource(tif, image)
        names = ", ".join(p.name for p in paths[:3])
        return self._no(image, f"no reader for its files ({names}...)")

    def _tiff(self, path: Path) -> Any:
        tif = self._tiffs.get(path)
        if tif is None:
            import tifffile

            tif = self._tiffs[path] = tifffile.TiffFile(path)
        return tif

    def _plate_source(self, image: OmeroImage, root: Path, kind: str) -> Any:
        plate = self._plates.get(root)
        if plate is None:
            if kind == "ome-zarr":
                from openhcs_nb.plates.ome_zarr import open_ome_zarr_plate

                plate = open_ome_zarr_plate(root)
            else:
                from openhcs_nb.plates.imagexpress import open_imagexpress_plate

                plate = open_imagexpress_plate(root)
            self._plates[root] = plate
        lay = plate.layout
        sizes = (lay.t, len(lay.channels), lay.z, *lay.shape)
        ours = (image.size_t, image.size_c, image.size_z, image.size_y, image.size_x)
        if image.well not in lay.wells or image.field >= lay.fields:
            return self._no(
                image, f"{kind} at {root} has no {image.well} field {image.field}"
            )
        if sizes != ours or lay.dtype != image.dtype:
            return self._no(
                image,
                f"{kind} at {root} is {sizes} {lay.dtype}, "
                f"the Pixels are {ours} {image.dtype}",
            )
        return PlateFieldSource(plate, image.well, image.field, image)


def _zarr_root(paths: list[Path]) -> Path | None:
    for path in paths:
        for parent in (path, *path.parents):
            if parent.suffix.lower() == ".zarr":
                return parent
    return None


def _fits(
    shape: tuple[int, ...], dtype: Any, image: OmeroImage, *, whole: bool
) -> bool:
    """Same pixel type, a ``(y, x)`` plane, and the whole image (or one plane)."""
    planes = image.size_z * image.size_c * image.size_t if whole else 1
    expected = planes * image.size_x * image.size_y
    plane = (image.size_y, image.size_x)
    has_plane = any(tuple(shape[i : i + 2]) == plane for i in range(len(shape) - 1))
    same_type = np.dtype(dtype) == np.dtype(image.dtype)
    return int(np.prod(shape)) == expected and has_plane and same_type
