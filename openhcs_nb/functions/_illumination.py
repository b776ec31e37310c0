"""Illumination correction: divide each plane by the plate's flat field.

The flat field is fitted once per plate and channel before any well runs
(:mod:`openhcs_nb.execution.plate_phase`); the runner hands it to this
function as ``illumination``. A preview, which runs before any fit exists,
gets ``None`` and falls back to the field's own illumination: a heavy
Gaussian of the plane, normalised to a mean of 1 (CellProfiler's "each
image" mode). That estimate is biased by the objects in the field, which is
why the plate-level fit is what full runs use.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from msgspec import Meta
from scipy import ndimage as ndi

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._common import as_stack
from openhcs_nb.spec import Function


def own_flat_field(plane: np.ndarray, smoothing: float) -> np.ndarray:
    """A flat field estimated from one plane (for previews), mean 1."""
    sigma = max(1.0, smoothing * min(plane.shape))
    small = max(1, int(sigma // 4))
    coarse = plane[::small, ::small].astype(np.float32)
    smooth = ndi.gaussian_filter(coarse, sigma / small, mode="nearest")
    zoom = (plane.shape[0] / smooth.shape[0], plane.shape[1] / smooth.shape[1])
    full = ndi.zoom(smooth, zoom, order=1, mode="nearest", grid_mode=True)
    full = full[: plane.shape[0], : plane.shape[1]]
    full = np.maximum(full, np.finfo(np.float32).tiny)
    return (full / full.mean()).astype(np.float32)


def _correct_illumination(
    stack: np.ndarray,
    *,
    method: Annotated[
        Literal["background", "mean"],
        Meta(
            description="fit the background level (sparse objects) or the "
            "mean (confluent fields)"
        ),
    ] = "background",
    smoothing: Annotated[
        float,
        Meta(
            ge=0.0,
            le=0.5,
            description="Gaussian smoothing of the fit, as a fraction of the field",
        ),
    ] = 0.1,
    illumination: np.ndarray | None = None,
) -> np.ndarray:
    """Each plane divided by the flat field (float32, mean brightness kept)."""
    stack = as_stack(stack, "correct_illumination")
    out = np.empty(stack.shape, dtype=np.float32)
    for i, plane in enumerate(stack):
        flat = illumination if illumination is not None else None
        if flat is None:
            flat = own_flat_field(plane, smoothing)
        if flat.shape != plane.shape:
            raise PipelineError(
                f"correct_illumination: the flat field is {flat.shape}, the "
                f"plane {plane.shape}",
                field="illumination",
            )
        np.divide(plane, flat, out=out[i], dtype=np.float32)
    return out


correct_illumination = Function(
    name="correct_illumination",
    version="1",
    impl=_correct_illumination,
    help=(
        "Correct uneven illumination: fit a smooth flat field per channel from "
        "every field of the plate, then divide each image by it."
    ),
    category="intensity",
    input="image",
    output="image",
    plate_phase="illumination",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:correct_illumination",
)
