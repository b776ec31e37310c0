"""Reading OME-Zarr HCS metadata (0.4 on Zarr v2, 0.5 on Zarr v3) as plain data.

The group documents are small JSON files, so they are read directly rather than
through ``zarr.open_group``: opening a 384-well plate reads one file per well,
and plain ``json`` does that about ten times faster. Pixels are always read
through ``zarr``. The parsing here only checks what the reader relies on and
names the file and key when something is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openhcs_nb.errors import PlateError
from openhcs_nb.plates._containment import Confinement, read_bytes, relative_key

_AXIS_ORDER = ("t", "c", "z", "y", "x")


@dataclass(frozen=True)
class GroupDoc:
    """The OME attributes of one Zarr group and where they came from."""

    path: Path
    zarr_format: int
    ome: dict[str, Any]


def read_group(
    path: Path, confine: Confinement | None = None, ref: str = ""
) -> GroupDoc | None:
    """The OME attributes of the group at ``path``, or None if it is no group.

    Zarr v3 keeps them under ``attributes.ome`` in ``zarr.json``; Zarr v2 keeps
    them at the top of ``.zattrs``. With ``confine`` the file is read only when
    it lies inside the plate roots (``ref`` names the plate in errors).

    Raises
    ------
    UnknownPlateError
        The metadata file leads outside the plate roots.
    PlateError
        The metadata file exists but is not valid JSON.
    """
    v3 = path / "zarr.json"
    v2 = path / ".zattrs"
    if v3.is_file():
        doc = _load_json(v3, confine, ref)
        attrs = doc.get("attributes") or {}
        ome = attrs.get("ome", attrs)
        return GroupDoc(path, 3, ome if isinstance(ome, dict) else {})
    if v2.is_file():
        attrs = _load_json(v2, confine, ref)
        return GroupDoc(path, 2, attrs)
    if (path / ".zgroup").is_file():
        if confine is not None:
            confine.check(path / ".zgroup", ref)
        return GroupDoc(path, 2, {})
    return None


def _load_json(path: Path, confine: Confinement | None, ref: str) -> dict[str, Any]:
    try:
        doc = json.loads(read_bytes(confine, path, ref or str(path)).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlateError(f"cannot read OME-Zarr metadata {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise PlateError(f"OME-Zarr metadata {path} is not a JSON object")
    return doc


@dataclass(frozen=True)
class PlateWell:
    """One entry of ``plate.wells``: its group path and grid position."""

    path: str
    row: str
    column: str
    row_index: int
    column_index: int


@dataclass(frozen=True)
class PlateDoc:
    """The parts of ``plate`` metadata the reader uses."""

    name: str | None
    version: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    wells: tuple[PlateWell, ...]
    field_count: int | None


def parse_plate(doc: GroupDoc) -> PlateDoc:
    """Check and unpack ``plate`` metadata.

    Raises
    ------
    PlateError
        A required key is missing or malformed (the message names it).
    """
    plate = doc.ome.get("plate")
    where = f"plate metadata of {doc.path}"
    if not isinstance(plate, dict):
        raise PlateError(f"{where}: no 'plate' object")
    rows = tuple(_names(plate.get("rows"), f"{where}: 'rows'"))
    columns = tuple(_names(plate.get("columns"), f"{where}: 'columns'"))
    raw_wells = plate.get("wells")
    if not isinstance(raw_wells, list):
        raise PlateError(f"{where}: 'wells' must be a list")
    wells = []
    for i, entry in enumerate(raw_wells):
        wells.append(_plate_well(entry, rows, columns, f"{where}: wells[{i}]"))
    count = plate.get("field_count")
    version = str(doc.ome.get("version") or plate.get("version") or "")
    return PlateDoc(
        name=plate.get("name") if isinstance(plate.get("name"), str) else None,
        version=version,
        rows=rows,
        columns=columns,
        wells=tuple(wells),
        field_count=count if isinstance(count, int) and count > 0 else None,
    )


def _names(items: object, where: str) -> list[str]:
    if not isinstance(items, list) or not items:
        raise PlateError(f"{where} must be a non-empty list")
    out = []
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise PlateError(f"{where}[{i}] has no 'name'")
        out.append(name)
    return out


def _plate_well(
    entry: object, rows: tuple[str, ...], columns: tuple[str, ...], where: str
) -> PlateWell:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise PlateError(f"{where} has no 'path'")
    path = relative_key(entry["path"], where)
    parts = path.split("/")
    r_idx, c_idx = entry.get("rowIndex"), entry.get("columnIndex")
    if not isinstance(r_idx, int) or not isinstance(c_idx, int):
        # Before 0.4 wells carried only their path "<row>/<column>".
        if len(parts) != 2 or parts[0] not in rows or parts[1] not in columns:
            raise PlateError(f"{where}: path {path!r} is not '<row>/<column>'")
        r_idx, c_idx = rows.index(parts[0]), columns.index(parts[1])
    if not (0 <= r_idx < len(rows) and 0 <= c_idx < len(columns)):
        raise PlateError(f"{where}: rowIndex/columnIndex out of range")
    return PlateWell(path, rows[r_idx], columns[c_idx], r_idx, c_idx)


def parse_well_images(doc: GroupDoc) -> tuple[str, ...]:
    """The field paths of a well, in acquisition order.

    Raises
    ------
    PlateError
        The group has no well metadata or an image entry has no path.
    """
    well = doc.ome.get("well")
    images = well.get("images") if isinstance(well, dict) else None
    if not isinstance(images, list):
        raise PlateError(f"well metadata of {doc.path}: no 'well.images' list")
    paths = []
    for i, image in enumerate(images):
        if not isinstance(image, dict) or not isinstance(image.get("path"), str):
            raise PlateError(f"well metadata of {doc.path}: images[{i}] has no path")
        where = f"well metadata of {doc.path}: images[{i}]"
        paths.append(relative_key(image["path"], where))
    return tuple(paths)


@dataclass(frozen=True)
class ImageDoc:
    """Where a field's full-resolution array is and what its axes are."""

    level0: str
    axes: tuple[str, ...]
    channel_labels: tuple[str | None, ...]


def parse_image(doc: GroupDoc) -> ImageDoc:
    """Unpack ``multiscales[0]`` (first dataset = highest resolution) and omero.

    Raises
    ------
    PlateError
        No multiscales, no datasets, or an axis this reader does not know.
    """
    where = f"image metadata of {doc.path}"
    multiscales = doc.ome.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales:
        raise PlateError(f"{where}: no 'multiscales'")
    first = multiscales[0]
    datasets = first.get("datasets") if isinstance(first, dict) else None
    if not isinstance(datasets, list) or not datasets:
        raise PlateError(f"{where}: multiscales[0] has no datasets")
    level0 = datasets[0].get("path") if isinstance(datasets[0], dict) else None
    if not isinstance(level0, str):
        raise PlateError(f"{where}: datasets[0] has no path")
    axes = _axes(first.get("axes"), where)
    level0 = relative_key(level0, f"{where}: datasets[0]")
    return ImageDoc(level0, axes, _channel_labels(doc.ome.get("omero")))


def _axes(raw: object, where: str) -> tuple[str, ...]:
    if raw is None:  # before 0.3 every image was 5-D tczyx
        return _AXIS_ORDER
    if not isinstance(raw, list):
        raise PlateError(f"{where}: 'axes' must be a list")
    names = []
    for axis in raw:
        name = axis.get("name") if isinstance(axis, dict) else axis
        if name not in _AXIS_ORDER:
            raise PlateError(f"{where}: unsupported axis {name!r}")
        names.append(name)
    if len(set(names)) != len(names) or names[-2:] != ["y", "x"]:
        raise PlateError(f"{where}: axes {names} must be unique and end in y, x")
    return tuple(names)


def _channel_labels(omero: object) -> tuple[str | None, ...]:
    channels = omero.get("channels") if isinstance(omero, dict) else None
    if not isinstance(channels, list):
        return ()
    return tuple(
        ch.get("label") if isinstance(ch, dict) and ch.get("label") else None
        for ch in channels
    )


def channel_names(labels: tuple[str | None, ...], count: int) -> tuple[str, ...]:
    """Labels from omero where usable, ``C<i>`` otherwise, always unique."""
    names: list[str] = []
    for i in range(count):
        label = labels[i] if i < len(labels) else None
        base = str(label) if label else f"C{i}"
        name, k = base, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return tuple(names)
