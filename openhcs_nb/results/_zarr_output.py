"""The OME-Zarr 0.4 plate of outputs: labels and derived images, never raw pixels.

Each field group is a valid OME-Zarr image whose channels are only the ones a
step changed (possibly none: a ``(t, 0, z, y, x)`` array), with the labels sets
under ``labels/<name>``. The raw channels stay in the input plate; the root's
and every field's ``openhcs_nb`` attributes name that plate and list the final
planes, so a reader can put the field back together (:func:`read_field`).

Arrays are written with zarr directly and described with ome-zarr-py's metadata
writers: its ``write_image`` goes through dask and costs ten times more per
field for a single resolution level. Zarr v2 is written because napari-ome-zarr
and vizarr read it everywhere today.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openhcs_nb.errors import PlateError
from openhcs_nb.plates.model import Plate, split_well
from openhcs_nb.results.records import PlaneKey, StoreLayout, WellOutputs

_ATTR = "openhcs_nb"
_COLOURS = ("0000FF", "00FF00", "FF0000", "FF00FF", "FFFF00", "00FFFF")
InputOpener = Callable[[str], Plate]


def create_plate(path: Path, layout: StoreLayout) -> None:
    """Write the empty plate: plate and well metadata, and the raw-pixel pointer."""
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_plate_metadata, write_well_metadata

    fmt = FormatV04()
    root = zarr.open_group(path, mode="w", zarr_format=2)
    cells = [split_well(w) for w in layout.wells]
    rows = sorted({r for r, _ in cells}, key=lambda r: (len(r), r))
    cols = sorted({c for _, c in cells})
    paths = [f"{r}/{c}" for r, c in cells]
    write_plate_metadata(
        root,
        rows,
        [str(c) for c in cols],
        paths,
        fmt=fmt,
        field_count=layout.fields,
        name=f"{layout.plate_name} - {layout.pipeline_name}",
    )
    root.attrs[_ATTR] = {
        "raw_pixels": layout.plate_ref,
        "channels": list(layout.channels),
    }
    fields = [str(i) for i in range(layout.fields)]
    for cell in paths:
        write_well_metadata(root.require_group(cell), fields, fmt=fmt)


def write_well(path: Path, outputs: WellOutputs) -> None:
    """Write one well's derived images and labels, field by field."""
    import zarr

    row, col = split_well(outputs.well)
    root = zarr.open_group(path, mode="r+", zarr_format=2)
    raw_ref = root.attrs.get(_ATTR, {}).get("raw_pixels", "")
    well_group = root.require_group(f"{row}/{col}")
    n_t = 1 + max((k[1] for k in outputs.planes), default=0)
    n_z = 1 + max((k[3] for k in outputs.planes), default=0)
    for site in outputs.sites:
        group = well_group.require_group(str(site))
        derived = {k: p for k, p in outputs.derived.items() if k[0] == site}
        channels = sorted({k[2] for k in derived})
        first = next(iter(derived.values()), None)
        shape = first.shape if first is not None else outputs.shape
        dtype = (
            np.result_type(*{p.dtype for p in derived.values()})
            if derived
            else np.dtype(outputs.dtype)
        )
        array = _new_level(group, (n_t, len(channels), n_z, *shape), dtype)
        for (_, t, c, z), plane in derived.items():
            array[t, channels.index(c), z] = plane
        names = [outputs.channels[c] for c in channels]
        _describe(group, omero=_omero_channels(derived, channels, names))
        group.attrs[_ATTR] = {
            "raw_pixels": raw_ref,
            "channels": list(outputs.channels),
            "derived_channels": channels,
            "planes": sorted([t, c, z] for s, t, c, z in outputs.planes if s == site),
        }
        if outputs.labels:
            _write_labels(group, outputs, site, n_t, n_z, shape)


def _write_labels(
    group: Any,
    outputs: WellOutputs,
    site: int,
    n_t: int,
    n_z: int,
    shape: Sequence[int],
) -> None:
    parent = group.require_group("labels")
    for name, planes in outputs.labels.items():
        mine = {k: p for k, p in planes.items() if k[0] == site}
        plane_shape = next(iter(mine.values())).shape if mine else tuple(shape)
        target = parent.require_group(name)
        array = _new_level(target, (n_t, 1, n_z, *plane_shape), np.dtype(np.int32))
        for (_, t, z), plane in mine.items():
            array[t, 0, z] = plane
        _describe(target, name=name)
        _label_metadata(parent, name)


def read_field(
    path: Path, well: str, site: int, open_input: InputOpener | None
) -> dict[str, np.ndarray]:
    """``image/<channel>`` planes (first t and z) and ``labels/<name>`` of a field.

    Channels the pipeline changed come from the store, the others from the
    input plate through ``open_input`` (called with the recorded plate ref).

    Raises
    ------
    PlateError
        The field has not been written (yet), or it needs raw pixels and no
        ``open_input`` was given.
    """
    import zarr

    row, col = split_well(well)
    try:
        group = zarr.open_group(path / row / str(col) / str(site), mode="r")
        level = group["0"]
    except (KeyError, FileNotFoundError) as exc:
        raise PlateError(f"no results for well {well} field {site} yet") from exc
    meta = group.attrs.get(_ATTR)
    if meta is None:  # a store written before raw pixels were left in place
        out = _legacy_images(group, level)
    else:
        out = _images(meta, level, well, site, open_input)
    labels = group.get("labels")
    if labels is not None:
        for name in labels.attrs.get("labels", []):
            out[f"labels/{name}"] = np.asarray(labels[name]["0"][0, 0, 0])
    return out


def read_labels(path: Path, well: str, site: int) -> dict[str, np.ndarray]:
    """Every labels set of one field (first t and z), by name; no pixels.

    Raises
    ------
    PlateError
        The field has not been written (yet).
    """
    import zarr

    row, col = split_well(well)
    try:
        group = zarr.open_group(path / row / str(col) / str(site), mode="r")
    except (KeyError, FileNotFoundError) as exc:
        raise PlateError(f"no results for well {well} field {site} yet") from exc
    labels = group.get("labels")
    if labels is None:
        return {}
    return {
        name: np.asarray(labels[name]["0"][0, 0, 0])
        for name in labels.attrs.get("labels", [])
    }


def _images(
    meta: dict[str, Any],
    level: Any,
    well: str,
    site: int,
    open_input: InputOpener | None,
) -> dict[str, np.ndarray]:
    names: list[str] = meta["channels"]
    derived: list[int] = meta["derived_channels"]
    first = sorted({c for t, c, z in meta["planes"] if t == 0 and z == 0})
    raw = [c for c in first if c not in derived]
    plate = None
    if raw:
        if open_input is None:
            raise PlateError(
                f"well {well} field {site}: raw channels live in the input plate "
                f"{meta['raw_pixels']!r}; open the store with an input opener"
            )
        plate = open_input(meta["raw_pixels"])
    out: dict[str, np.ndarray] = {}
    for c in first:
        if c in derived:
            out[f"image/{names[c]}"] = np.asarray(level[0, derived.index(c), 0])
        else:
            assert plate is not None
            out[f"image/{names[c]}"] = plate.read_image(well, site, c, 0, 0)
    return out


def _legacy_images(group: Any, level: Any) -> dict[str, np.ndarray]:
    image = np.asarray(level[0, :, 0])
    channels = group.attrs.get("omero", {}).get("channels", [])
    names = [c.get("label", f"C{i}") for i, c in enumerate(channels)]
    names += [f"C{i}" for i in range(len(names), image.shape[0])]
    return {f"image/{names[c]}": image[c] for c in range(image.shape[0])}


def _new_level(group: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """Level ``0`` with one chunk per plane; planes never set take no disk."""
    from numcodecs import Blosc

    return group.create_array(
        "0",
        shape=shape,
        dtype=dtype,
        chunks=(1, 1, 1, *shape[-2:]),
        compressors=Blosc("lz4", 5, Blosc.BITSHUFFLE),
        fill_value=0,
        overwrite=True,
    )


def _describe(group: Any, name: str | None = None, omero: dict | None = None) -> None:
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    scale = [{"type": "scale", "scale": [1.0] * 5}]
    extra: dict[str, Any] = {"metadata": {"omero": omero}} if omero else {}
    write_multiscales_metadata(
        group,
        [{"path": "0", "coordinateTransformations": scale}],
        fmt=FormatV04(),
        axes="tczyx",
        name=name,
        **extra,
    )


def _label_metadata(labels_group: Any, name: str) -> None:
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_label_metadata

    write_label_metadata(labels_group, name, fmt=FormatV04())


def _omero_channels(
    derived: dict[PlaneKey, np.ndarray],
    channels: list[int],
    names: list[str],
) -> dict[str, Any]:
    """Names, colours and windows of the derived channels, so viewers open them."""
    out = []
    for index, name in zip(channels, names, strict=True):
        planes = [p for k, p in derived.items() if k[2] == index]
        low = float(min(p.min() for p in planes))
        high = float(max(p.max() for p in planes))
        dtype = planes[0].dtype
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            full = (float(info.min), float(info.max))
        else:
            full = (low, high)
        window = {"min": full[0], "max": full[1], "start": low, "end": high}
        out.append(
            {
                "label": name,
                "color": _COLOURS[index % len(_COLOURS)],
                "active": True,
                "window": window,
            }
        )
    return {"channels": out}
