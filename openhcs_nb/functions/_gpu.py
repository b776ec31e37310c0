"""CuPy twins of the functions that cupyx.scipy.ndimage can run on a GPU.

Each twin has the same signature as its NumPy implementation and takes and
returns CuPy arrays; :func:`openhcs_nb.functions.select_impl` moves data in
and out. CuPy is an optional extra (``openhcs-nb[gpu]``), so it is imported
inside each function, never when this module loads.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from openhcs_nb.functions import _background as bg


def _modules() -> tuple[ModuleType, ModuleType]:
    """``cupy`` and ``cupyx.scipy.ndimage``, imported on first use."""
    import cupy
    from cupyx.scipy import ndimage

    return cupy, ndimage


def gaussian_blur(stack: Any, *, sigma: float = 2.0) -> Any:
    """Gaussian smoothing of each plane (float32), as ``mode="nearest"``."""
    cp, ndi = _modules()
    src = stack.astype(cp.float32, copy=False)
    if sigma <= 0.0:
        return src.copy()
    out = cp.empty(src.shape, dtype=cp.float32)
    for i in range(src.shape[0]):
        ndi.gaussian_filter(src[i], sigma, output=out[i], mode="nearest", truncate=4.0)
    return out


def subtract_background(
    stack: Any, *, radius: int = 50, method: str = "rolling_ball"
) -> Any:
    """Same shrink-open-interpolate background as the CPU version, clipped at 0."""
    cp, ndi = _modules()
    factor = bg.shrink_factor(radius)
    footprint, heights = bg.structuring_element(radius, factor, method)
    out = cp.empty(stack.shape, dtype=cp.float32)
    for i in range(stack.shape[0]):
        plane = stack[i]
        small = bg.open_small(
            bg.block_min(plane, factor, cp), footprint, heights, cp, ndi
        )
        background = bg.upsample_linear(small, plane.shape, factor, cp)
        out[i] = plane.astype(cp.float32, copy=False) - background
    return cp.maximum(out, cp.float32(0.0), out=out)


def fill_holes(stack: Any) -> Any:
    """Fill holes in each plane's mask (cupyx's non-iterative default algorithm)."""
    cp, ndi = _modules()
    out = cp.empty(stack.shape, dtype=cp.bool_)
    for i in range(stack.shape[0]):
        out[i] = ndi.binary_fill_holes(stack[i].astype(cp.bool_, copy=False))
    return out


def label_objects(stack: Any, *, connectivity: int = 1) -> Any:
    """Connected components of each plane's mask, as int32 labels."""
    cp, ndi = _modules()
    structure = ndi.generate_binary_structure(2, connectivity)
    out = cp.empty(stack.shape, dtype=cp.int32)
    for i in range(stack.shape[0]):
        labels, _ = ndi.label(stack[i], structure=structure)
        out[i] = labels
    return out


def expand_labels(stack: Any, *, distance: int = 10) -> Any:
    """Grow labels into background up to ``distance`` px, nearest label wins."""
    cp, ndi = _modules()
    out = stack.astype(cp.int32, copy=True)
    for i in range(stack.shape[0]):
        plane = stack[i]
        background = plane == 0
        if distance == 0 or not bool(background.any()) or bool(background.all()):
            continue
        dist, indices = ndi.distance_transform_edt(
            background, return_distances=True, return_indices=True
        )
        grown = plane[indices[0], indices[1]].astype(cp.int32)
        grown[dist > distance] = 0
        out[i] = grown
    return out
