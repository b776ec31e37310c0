"""Pyramid levels an OME-Zarr field already stores, for serving coarse tiles.

An OME-Zarr image lists its resolutions in ``multiscales[0].datasets``; the
writers (ome-zarr-py, our synthetic plate) store halvings of level 0. Reading
a coarse level's plane from such a dataset costs a fraction of reading and
averaging the full plane (the tile server caches the plane either way). A
stored dataset stands in for tile level ``k`` only when it is exactly that
level: its y/x shape is the tile pyramid's shape for ``k``
(:func:`~openhcs_nb.server.tiles.level_shapes`) and its scale, when the
metadata gives one, is ``2**k`` times level 0's. Anything else (odd sizes
rounded the other way, other factors, unreadable metadata) is left to the
on-the-fly path, so a tile never changes shape with the plate's format.

Datasets are read under the plate's confinement like every other array.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from openhcs_nb.errors import PlateError
from openhcs_nb.plates._containment import relative_key
from openhcs_nb.plates._ome_zarr_meta import parse_image, read_group
from openhcs_nb.plates.ome_zarr import OmeZarrPlate, _open_array

#: Fields whose stored levels are kept open (arrays are metadata only).
_OPEN_FIELDS = 1024

Levels = dict[int, tuple[Any, tuple[str, ...]]]  # tile level -> (array, axes)


class StoredLevels:
    """The stored datasets of fields, matched to tile levels (opened lazily)."""

    def __init__(self) -> None:
        self._open: OrderedDict[tuple[str, str, int], Levels] = OrderedDict()
        self._lock = threading.Lock()

    def plane(
        self,
        plate: Any,
        well: str,
        site: int,
        channel: int,
        level: int,
        shapes: list[tuple[int, int]],
    ) -> np.ndarray | None:
        """One channel's plane at tile ``level`` as stored, or None if not stored."""
        if level == 0 or not isinstance(plate, OmeZarrPlate):
            return None
        found = self.levels(plate, well, site, shapes).get(level)
        if found is None:
            return None
        array, axes = found
        index = tuple(
            slice(None) if a in ("y", "x") else channel if a == "c" else 0 for a in axes
        )
        return np.asarray(array[index])

    def levels(
        self, plate: OmeZarrPlate, well: str, site: int, shapes: list[tuple[int, int]]
    ) -> Levels:
        """Tile level -> stored array for one field (cached per field)."""
        key = (plate.ref, well, site)
        with self._lock:
            if key in self._open:
                self._open.move_to_end(key)
                return self._open[key]
        try:
            found = _match(plate, well, site, shapes)
        except (PlateError, OSError, KeyError, ValueError, TypeError):
            found = {}  # odd metadata: the on-the-fly path still serves it
        with self._lock:
            self._open[key] = found
            while len(self._open) > _OPEN_FIELDS:
                self._open.popitem(last=False)
        return found


def _match(
    plate: OmeZarrPlate, well: str, site: int, shapes: list[tuple[int, int]]
) -> Levels:
    field_path = plate._well_fields[well][site]  # the plate's own map
    root: Any = plate._root
    doc = read_group(root / field_path, plate.confine, plate.ref)
    if doc is None:
        return {}
    image = parse_image(doc)
    datasets = doc.ome["multiscales"][0]["datasets"]
    base = _scale(datasets[0], image.axes)
    found: Levels = {}
    for entry in datasets[1:]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        key = f"{field_path}/{relative_key(entry['path'], str(root))}"
        array = _open_array(root, key, plate.confine)
        sizes = dict(zip(image.axes, array.shape, strict=False))
        shape = (sizes.get("y"), sizes.get("x"))
        if shape not in shapes or len(image.axes) != array.ndim:
            continue
        level = shapes.index(shape)  # type: ignore[arg-type]
        scale = _scale(entry, image.axes)
        if scale is not None and base is not None:
            wanted = 2.0**level
            ratios = (scale[0] / base[0], scale[1] / base[1])
            if not all(math.isclose(r, wanted, rel_tol=1e-6) for r in ratios):
                continue
        if str(array.dtype) == plate.layout.dtype and level not in found:
            found[level] = (array, image.axes)
    return found


def _scale(entry: Any, axes: tuple[str, ...]) -> tuple[float, float] | None:
    """The (y, x) scale of one dataset, or None when it states none."""
    transforms = entry.get("coordinateTransformations") or ()
    for transform in transforms if isinstance(transforms, list) else ():
        if not isinstance(transform, dict) or transform.get("type") != "scale":
            continue
        scale = transform.get("scale")
        if isinstance(scale, list) and len(scale) == len(axes) and all(scale[-2:]):
            return float(scale[-2]), float(scale[-1])
    return None
