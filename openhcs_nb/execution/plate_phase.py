"""The plate-level phase: a flat field per channel, fitted from every well.

Illumination correction needs the whole plate before any well can be
corrected, so a plan whose first step calls a function with
``plate_phase="illumination"`` runs in two passes:

1. **Contributions**, one task per well (in parallel, like wells): the
   well's raw fields of each corrected channel, reduced to a coarse grid of
   at most :data:`GRID` blocks a side (each block's background level or
   mean), then to their per-block median over the well's fields.
   Each is written atomically to ``parts/<well>.illumination.npz``, so a
   restart redoes only the wells whose part is missing.
2. **Fit**, once: the median of the wells' grids, Gaussian-smoothed,
   normalised to a mean of 1 and resized to the field size, written to
   ``illumination.npz`` (what the wells read) and ``illumination.ome.zarr``
   (what a person opens in napari or a viewer).

Memory is one well's planes per worker in pass 1, and wells x grid^2 floats
per channel in pass 2 (384 wells at 64^2 are 6 MB).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from openhcs_nb.errors import ExecutionError
from openhcs_nb.execution.plan import ExecutionPlan, IlluminationPhase
from openhcs_nb.plates.model import Plate

#: Longest side of the coarse grid contributions are fitted on.
GRID = 64
#: Smallest block (pixels a side) a coarse grid cell summarises.
MIN_BLOCK = 8
PHASE_PREFIX = "illumination:"
FIT_NAME = "illumination.npz"


def part_path(out: Path, well: str) -> Path:
    """Where one well's contribution is written."""
    return Path(out) / "parts" / f"{well}.illumination.npz"


def missing_wells(plan: ExecutionPlan, out: Path) -> list[str]:
    """Wells whose contribution is not on disk yet (all of them on a new run)."""
    return [w for w in plan.wells if not part_path(out, w).is_file()]


def is_fitted(out: Path) -> bool:
    """Whether the flat fields have been fitted for the run in ``out``."""
    return (Path(out) / FIT_NAME).is_file()


def _coarse(plane: np.ndarray, method: str) -> np.ndarray:
    """``plane`` reduced to blocks of at least :data:`MIN_BLOCK` pixels a side.

    "background" keeps each block's 10th percentile, so objects covering
    less than most of a block do not brighten the fit (CellProfiler's
    "background" flat field); "mean" keeps the block mean, which is right
    for confluent fields where no background is left to see.
    """
    step = max(MIN_BLOCK, -(-max(plane.shape) // GRID))
    h, w = (plane.shape[0] // step) * step, (plane.shape[1] // step) * step
    blocks = plane[:h, :w].astype(np.float32).reshape(h // step, step, w // step, step)
    if method == "mean":
        return blocks.mean(axis=(1, 3))
    flat = blocks.transpose(0, 2, 1, 3).reshape(h // step, w // step, step * step)
    return np.percentile(flat, 10, axis=2).astype(np.float32)


def contribute_or_skip(
    plan: ExecutionPlan, well: str, out: str | Path, plate: Plate | None = None
) -> int:
    """:func:`contribute`, or 0 for a well that cannot be read.

    The fit goes on without it; the well's own error is reported when the
    well pass reads it again.
    """
    try:
        return contribute(plan, well, out, plate)
    except Exception:  # a bad well must not stop the plate
        return 0


def contribute(
    plan: ExecutionPlan, well: str, out: str | Path, plate: Plate | None = None
) -> int:
    """Write ``well``'s contribution; returns the number of fields it used."""
    from openhcs_nb.execution.well import open_cached

    phase = _phase(plan)
    source = plate if plate is not None else open_cached(plan.plate_ref, plan.confine)
    data = source.read_well(well).data  # (site, t, c, z, y, x)
    arrays: dict[str, np.ndarray] = {}
    for c in phase.channels:
        planes = data[:, :, c].reshape(-1, *data.shape[-2:])
        coarse = np.stack([_coarse(p, phase.method) for p in planes])
        arrays[f"c{c}"] = np.median(coarse, axis=0).astype(np.float32)
    arrays["fields"] = np.array(len(planes))
    _save_atomic(part_path(Path(out), well), arrays)
    return len(planes)


def fit(plan: ExecutionPlan, out: str | Path) -> dict[int, np.ndarray]:
    """Fit the flat fields from the wells' parts and write them.

    A well that could not be read has no part: it is left out of the fit
    (and fails on its own in the well pass).

    Raises
    ------
    ExecutionError
        No well has a part.
    """
    out = Path(out)
    phase = _phase(plan)
    read = [w for w in plan.wells if part_path(out, w).is_file()]
    if not read:
        raise ExecutionError("illumination fit: no well of the plate could be read")
    parts: dict[int, list[np.ndarray]] = {c: [] for c in phase.channels}
    for well in read:
        with np.load(part_path(out, well)) as part:
            for c in phase.channels:
                parts[c].append(part[f"c{c}"])
    flats: dict[int, np.ndarray] = {}
    for c, grids in parts.items():
        # The median across wells: a well whose objects cover a block in
        # every field does not bend the fit.
        mean = np.median(np.stack(grids), axis=0)
        sigma = phase.smoothing * min(mean.shape)
        smooth = ndi.gaussian_filter(mean, sigma, mode="nearest") if sigma else mean
        smooth = np.maximum(smooth, np.finfo(np.float32).tiny)
        flats[c] = (smooth / smooth.mean()).astype(np.float32)
    full = (int(plan.layout.shape[0]), int(plan.layout.shape[1]))
    arrays = {f"c{c}": _resize(f, full) for c, f in flats.items()}
    _save_atomic(out / FIT_NAME, arrays)
    _write_viewable(out, phase, arrays)
    return {c: arrays[f"c{c}"] for c in flats}


def _resize(flat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The coarse flat field at full field resolution (bilinear)."""
    if flat.shape == shape:
        return flat
    zoom = (shape[0] / flat.shape[0], shape[1] / flat.shape[1])
    full = ndi.zoom(flat, zoom, order=1, mode="nearest", grid_mode=True)
    return full[: shape[0], : shape[1]].astype(np.float32)


@functools.lru_cache(maxsize=4)
def _load_fit(path: str, mtime_ns: int) -> dict[int, np.ndarray]:
    with np.load(path) as doc:
        return {int(k[1:]): doc[k] for k in doc.files}


def load_fit(out: str | Path) -> dict[int, np.ndarray]:
    """The fitted flat fields by channel index (cached per worker process).

    Raises
    ------
    ExecutionError
        The phase has not been fitted for this run.
    """
    path = Path(out) / FIT_NAME
    try:
        return _load_fit(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        raise ExecutionError(
            "the illumination flat field has not been fitted for this run"
        ) from None


def _phase(plan: ExecutionPlan) -> IlluminationPhase:
    phase = plan.plate_phase
    if phase is None:
        raise ExecutionError("this plan has no plate-level phase")
    return phase


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` under a temporary name and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)


def _write_viewable(
    out: Path, phase: IlluminationPhase, arrays: dict[str, np.ndarray]
) -> None:
    """The flat fields as an OME-Zarr image, one channel each."""
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    stack = np.stack([arrays[f"c{c}"] for c in phase.channels])
    root = zarr.open_group(out / "illumination.ome.zarr", mode="w", zarr_format=2)
    names = [phase.channel_names[i] for i in range(len(phase.channels))]
    write_image(
        stack,
        root,
        scale_factors=(),
        name="illumination",
        axes="cyx",
        fmt=FormatV04(),
        omero={
            "channels": [_channel_display(n, stack[i]) for i, n in enumerate(names)]
        },
    )


def _channel_display(name: str, flat: np.ndarray) -> dict[str, object]:
    """OMERO-style display settings so a viewer opens the fit with contrast."""
    low, high = float(flat.min()), float(flat.max())
    window = {"min": low, "max": high, "start": low, "end": high}
    return {"label": name, "color": "FFFFFF", "active": True, "window": window}
