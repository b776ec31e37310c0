"""Functions on label images: filtering objects by size, growing them.

Labels are per plane; both functions keep labels unique and never merge two
objects.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from msgspec import Meta
from scipy import ndimage as ndi

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._common import as_stack
from openhcs_nb.spec import Function


def _remove_small_objects(
    stack: np.ndarray,
    *,
    min_size: Annotated[
        int, Meta(ge=0, le=5_000, description="smallest area kept (pixels)")
    ] = 30,
    max_size: Annotated[
        int, Meta(ge=1, le=1_000_000, description="largest area kept (pixels)")
    ] = 100_000,
) -> np.ndarray:
    """Drop objects whose area is outside [min_size, max_size]; relabel 1..n.

    Areas come from one ``bincount`` per plane and the relabelling is a lookup
    table, so the cost is two passes over the pixels whatever the object count.
    """
    stack = as_stack(stack, "remove_small_objects")
    if min_size > max_size:
        raise PipelineError(
            f"remove_small_objects: min_size={min_size} exceeds max_size={max_size}",
            field="min_size",
        )
    out = np.empty(stack.shape, dtype=np.int32)
    for i, plane in enumerate(stack):
        flat = plane.ravel()
        areas = np.bincount(flat) if flat.size else np.zeros(1, np.intp)
        keep = (areas >= min_size) & (areas <= max_size)
        keep[0] = False
        lut = np.zeros(areas.size, dtype=np.int32)
        lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        if np.array_equal(lut, np.arange(lut.size)):
            out[i] = plane  # nothing removed and already 1..n: a plain copy
        else:
            out[i] = lut[plane]
    return out


def expand_plane(labels: np.ndarray, distance: int, out: np.ndarray) -> np.ndarray:
    """Grow labels into background up to ``distance`` px, nearest label wins."""
    background = labels == 0
    if distance == 0 or not background.any() or background.all():
        out[...] = labels
        return out
    dist, (iy, ix) = ndi.distance_transform_edt(
        background, return_distances=True, return_indices=True
    )
    np.copyto(out, labels[iy, ix])
    out[dist > distance] = 0
    return out


def _expand_labels(
    stack: np.ndarray,
    *,
    distance: Annotated[
        int, Meta(ge=0, le=200, description="how far to grow (pixels)")
    ] = 10,
) -> np.ndarray:
    """Grow every object by ``distance`` pixels without overlapping others."""
    stack = as_stack(stack, "expand_labels")
    out = np.empty(stack.shape, dtype=np.int32)
    for i, plane in enumerate(stack):
        expand_plane(plane, int(distance), out[i])
    return out


remove_small_objects = Function(
    name="remove_small_objects",
    version="1",
    impl=_remove_small_objects,
    help="Remove objects smaller or larger than the given areas; relabel 1..n.",
    category="objects",
    input="labels",
    output="labels",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:remove_small_objects",
)

expand_labels = Function(
    name="expand_labels",
    version="1",
    impl=_expand_labels,
    help="Grow objects into the background (e.g. cells around nuclei), no overlap.",
    category="objects",
    input="labels",
    output="labels",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:expand_labels",
)
