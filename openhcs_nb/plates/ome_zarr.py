"""OME-Zarr HCS plates: NGFF 0.4 (Zarr v2) and 0.5 (Zarr v3).

Opening reads only JSON metadata: the plate, every well (to know its fields and
whether it exists) and the first field of the first well (for channels, z, t,
pixel type and size). Pixels are read from the first multiscales dataset (the
highest resolution) one plane at a time by :meth:`OmeZarrPlate.read_image`, or
one field at a time by :meth:`OmeZarrPlate.read_well`.

A well listed in the plate metadata whose group is missing is left out of
``layout.wells``; asking for it raises :class:`UnknownWellError` saying so.

Opened with a :class:`Confinement` (as a server does), every metadata file and
every chunk is read only when it lies inside the plate roots (see
``_containment``); the plate root and each well group are checked when the
plate is opened, field groups, arrays and chunks when they are read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from openhcs_nb.errors import PlateError, UnknownPlateError, UnknownWellError
from openhcs_nb.plates._containment import Confinement
from openhcs_nb.plates._ome_zarr_meta import (
    ImageDoc,
    PlateDoc,
    channel_names,
    parse_image,
    parse_plate,
    parse_well_images,
    read_group,
)
from openhcs_nb.plates.model import (
    Plate,
    PlateLayout,
    WellImages,
    row_letters,
    split_well,
    well_name,
)

_LETTERS = re.compile(r"^[A-Z]{1,2}$")
_TCZYX = ("t", "c", "z", "y", "x")


def detect(path: Path, confine: Confinement | None = None) -> bool:
    """True when ``path`` is a Zarr group carrying OME ``plate`` metadata.

    Raises
    ------
    UnknownPlateError
        With ``confine``: the group's metadata leads outside the plate roots.
    """
    try:
        doc = read_group(path, confine, str(path)) if path.is_dir() else None
    except UnknownPlateError:
        raise
    except PlateError:
        return False
    return doc is not None and isinstance(doc.ome.get("plate"), dict)


class OmeZarrPlate(Plate):
    """An OME-Zarr plate on the local file system."""

    def __init__(
        self,
        ref: str,
        layout: PlateLayout,
        root: Path,
        well_fields: dict[str, tuple[str, ...]],
        missing: dict[str, str],
        confine: Confinement | None = None,
    ) -> None:
        super().__init__(ref, layout, confine)
        self._root = root
        self._well_fields = well_fields  # well name -> field group paths
        self._missing = missing  # well name -> why it cannot be read
        self._open: dict[tuple[str, int], tuple[Any, tuple[str, ...]]] = {}

    def check_well(self, well: str) -> str:
        """The canonical spelling of ``well``.

        Raises
        ------
        UnknownWellError
            No such well, or it is listed in the plate metadata but missing.
        """
        row, col = split_well(well)
        name = well_name(row, col)
        if name in self._missing:
            raise UnknownWellError(
                f"plate {self.name!r}: well {name} is listed but cannot be read: "
                f"{self._missing[name]}"
            )
        return super().check_well(name)

    def _field(self, well: str, site: int) -> tuple[Any, tuple[str, ...]]:
        """The level-0 zarr array of one field and its axis names (cached)."""
        key = (well, site)
        if key in self._open:
            return self._open[key]
        fields = self._well_fields[well]
        if not 0 <= site < len(fields):
            raise PlateError(
                f"plate {self.name!r}, well {well}: no field {site} "
                f"(this well has {len(fields)})"
            )
        group = self._root / fields[site]
        doc = read_group(group, self.confine, self.ref)
        if doc is None:
            raise PlateError(f"plate {self.name!r}, well {well}: missing field {group}")
        image = parse_image(doc)
        array = _open_array(self._root, f"{fields[site]}/{image.level0}", self.confine)
        _check_array(array, image, self.layout, f"{well} field {site}")
        self._open[key] = (array, image.axes)
        return array, image.axes

    def read_image(
        self, well: str, site: int, channel: int, z: int = 0, t: int = 0
    ) -> np.ndarray:
        """One ``(y, x)`` plane of the highest resolution, read alone.

        Raises
        ------
        UnknownWellError
            The well is not on the plate or is missing.
        PlateError
            The field, channel, z or t index is out of range.
        """
        well = self.check_well(well)
        lay = self.layout
        wanted = {"t": (t, lay.t), "c": (channel, len(lay.channels)), "z": (z, lay.z)}
        for axis, (index, size) in wanted.items():
            if not 0 <= index < size:
                label = "channel" if axis == "c" else axis
                raise PlateError(
                    f"plate {self.name!r}, well {well}: {label} index {index} "
                    f"is out of range (0..{size - 1})"
                )
        array, axes = self._field(well, site)
        index = tuple(slice(None) if a in ("y", "x") else wanted[a][0] for a in axes)
        return np.asarray(array[index])

    def read_well(self, well: str) -> WellImages:
        """Every field of ``well``, each read from zarr in one call.

        Raises
        ------
        UnknownWellError
            The well is not on the plate or is missing.
        PlateError
            The well has fewer fields than the plate, or a field is unreadable.
        """
        well = self.check_well(well)
        lay = self.layout
        out = np.empty(
            (lay.fields, lay.t, len(lay.channels), lay.z, *lay.shape), dtype=self.dtype
        )
        for site in range(lay.fields):
            array, axes = self._field(well, site)
            out[site] = _to_tczyx(np.asarray(array[...]), axes)
        return WellImages(well, out, lay.channels)


def _open_array(root: Path, key: str, confine: Confinement | None) -> Any:
    """The array at ``key`` in the plate at ``root``; confined when asked."""
    import zarr  # lazy: zarr is only needed once pixels are read

    path = root / key
    try:
        if confine is None:
            return zarr.open_array(str(path), mode="r")
        from openhcs_nb.plates._confined_store import open_confined_array

        return open_confined_array(root, key, confine, str(root))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise PlateError(f"cannot open OME-Zarr array {path}: {exc}") from exc


def _check_array(array: Any, image: ImageDoc, lay: PlateLayout, where: str) -> None:
    sizes = dict(zip(image.axes, array.shape, strict=False))
    expected = {"t": lay.t, "c": len(lay.channels), "z": lay.z}
    problems = [
        f"{axis}={sizes.get(axis, 1)} (plate has {size})"
        for axis, size in expected.items()
        if sizes.get(axis, 1) != size
    ]
    if (sizes["y"], sizes["x"]) != lay.shape:
        problems.append(f"shape {(sizes['y'], sizes['x'])} (plate has {lay.shape})")
    if str(array.dtype) != lay.dtype:
        problems.append(f"dtype {array.dtype} (plate has {lay.dtype})")
    if len(image.axes) != array.ndim:
        problems.append(f"{array.ndim} dims but axes {image.axes}")
    if problems:
        raise PlateError(f"{where} does not match the plate: {', '.join(problems)}")


def _to_tczyx(data: np.ndarray, axes: tuple[str, ...]) -> np.ndarray:
    """Reorder a field's array to ``(t, c, z, y, x)``, adding missing axes."""
    present = list(axes)
    for axis in _TCZYX:
        if axis not in present:
            data = data[np.newaxis]
            present.insert(0, axis)
    return np.transpose(data, [present.index(a) for a in _TCZYX])


def open_ome_zarr_plate(path: Path, confine: Confinement | None = None) -> OmeZarrPlate:
    """Open the OME-Zarr plate at ``path``; its ref is the absolute path.

    Raises
    ------
    UnknownPlateError
        ``path`` has no OME plate metadata, a metadata path leaves the plate,
        or (with ``confine``) a group it reads leads outside the plate roots.
    PlateError
        The metadata is malformed, or no listed well can be read.
    """
    root = Path(path).expanduser().resolve()
    ref = str(root)
    if confine is not None:
        confine.check(root, ref)
    doc = read_group(root, confine, ref)
    if doc is None or not isinstance(doc.ome.get("plate"), dict):
        raise UnknownPlateError(f"{root} is not an OME-Zarr plate (no plate metadata)")
    plate = parse_plate(doc)
    well_fields: dict[str, tuple[str, ...]] = {}
    missing: dict[str, str] = {}
    for entry in sorted(plate.wells, key=lambda w: (w.row_index, w.column_index)):
        name = well_name(
            _row(entry.row, entry.row_index), _column(entry.column, entry.column_index)
        )
        if name in well_fields or name in missing:
            raise PlateError(f"{root}: well {name} is listed twice")
        well_doc = read_group(root / entry.path, confine, ref)
        if well_doc is None:
            missing[name] = f"its group {entry.path!r} does not exist in {root}"
            continue
        fields = parse_well_images(well_doc)
        if not fields:
            missing[name] = f"its group {entry.path!r} lists no images"
            continue
        well_fields[name] = tuple(f"{entry.path}/{f}" for f in fields)
    if not well_fields:
        raise PlateError(f"{root}: none of the {len(plate.wells)} listed wells exists")
    layout = _layout(root, plate, well_fields, confine)
    return OmeZarrPlate(ref, layout, root, well_fields, missing, confine)


def _layout(
    root: Path,
    plate: PlateDoc,
    well_fields: dict[str, tuple[str, ...]],
    confine: Confinement | None,
) -> PlateLayout:
    """Build the layout from the first field of the first existing well."""
    first_well, fields = next(iter(well_fields.items()))
    group = root / fields[0]
    doc = read_group(group, confine, str(root))
    if doc is None:
        raise PlateError(f"well {first_well}: missing field group {group}")
    image = parse_image(doc)
    array = _open_array(root, f"{fields[0]}/{image.level0}", confine)
    if array.ndim != len(image.axes):
        raise PlateError(f"{group}: {array.ndim}-D array but axes {image.axes}")
    sizes = dict(zip(image.axes, array.shape, strict=True))
    name = plate.name or re.sub(r"(\.ome)?\.zarr$", "", root.name, flags=re.I)
    return PlateLayout(
        name=name,
        rows=tuple(_row(r, i) for i, r in enumerate(plate.rows)),
        columns=tuple(_column(c, i) for i, c in enumerate(plate.columns)),
        wells=tuple(well_fields),
        fields=max(len(f) for f in well_fields.values()),
        channels=channel_names(image.channel_labels, sizes.get("c", 1)),
        z=sizes.get("z", 1),
        t=sizes.get("t", 1),
        dtype=str(array.dtype),
        shape=(sizes["y"], sizes["x"]),
    )


def _row(name: str, index: int) -> str:
    """Row letters as written, or by position when the name is not letters."""
    upper = name.strip().upper()
    return upper if _LETTERS.match(upper) else row_letters(index)


def _column(name: str, index: int) -> int:
    """Column number as written, or by position when the name is not a number."""
    text = name.strip()
    return int(text) if text.isdigit() else index + 1
