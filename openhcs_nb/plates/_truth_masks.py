"""Per-object truth masks of a synthetic plate, one compressed file per well.

Each well is a zip of ``.npy`` arrays (what ``np.load`` reads as an ``.npz``)
holding ``nuclei``, ``cells`` and ``debris``, each ``(fields, y, x)`` int32.
Nucleus ``i`` and cell ``i`` share label ``i``; debris has its own labels.
Entries carry a fixed timestamp, so the files, like the plate, depend only on
the spec. The folder sits beside an OME-Zarr plate (``<plate>.truth/``) or
inside an ImageXpress folder (``ground_truth_masks/``).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from openhcs_nb.errors import PlateError
from openhcs_nb.plates.model import split_well, well_name

KINDS = ("nuclei", "cells", "debris")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def masks_dir(path: Path, plate_format: str) -> Path:
    """Where the truth masks of a plate at ``path`` are written."""
    path = Path(path)
    if plate_format == "imagexpress":
        return path / "ground_truth_masks"
    return path.with_name(path.name + ".truth")


def save_well_masks(folder: Path, well: str, masks: dict[str, np.ndarray]) -> Path:
    """Write one well's ``(fields, y, x)`` label stacks; returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{well}.npz"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for kind in KINDS:
            buffer = io.BytesIO()
            np.lib.format.write_array(
                buffer, np.ascontiguousarray(masks[kind], np.int32)
            )
            info = zipfile.ZipInfo(f"{kind}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue(), compresslevel=1)
    return target


def _well_file(plate_path: Path, well: str) -> Path:
    name = well_name(*split_well(well))
    for plate_format in ("ome-zarr", "imagexpress"):
        candidate = masks_dir(plate_path, plate_format) / f"{name}.npz"
        if candidate.is_file():
            return candidate
    raise PlateError(
        f"no truth masks for well {well!r} of {plate_path} "
        "(only plates generated with style='realistic' have them)"
    )


def load_mask(plate_path: Path, well: str, site: int, kind: str) -> np.ndarray:
    """One ``(y, x)`` int32 label image (``kind`` in :data:`KINDS`) of a field.

    Raises
    ------
    PlateError
        The plate has no masks for ``well``, or ``site`` is out of range.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    with np.load(_well_file(Path(plate_path), well)) as data:
        stack = data[kind]
    if not 0 <= site < stack.shape[0]:
        raise PlateError(f"well {well!r} has {stack.shape[0]} fields, not site {site}")
    return stack[site]


def load_truth_masks(
    plate_path: Path, well: str, site: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(nuclei, cells)`` label images of one field; cell i contains nucleus i.

    Raises
    ------
    PlateError
        The plate has no masks for ``well``, or ``site`` is out of range.
    """
    return (
        load_mask(plate_path, well, site, "nuclei"),
        load_mask(plate_path, well, site, "cells"),
    )
