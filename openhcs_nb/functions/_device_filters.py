"""Device twins of the intensity functions, batched over the whole stack.

Each twin has its reference function's signature, takes and returns arrays
of one namespace (see :mod:`openhcs_nb.functions._xp`) and treats the planes
of an ``(n, y, x)`` stack in one call per operation: a Gaussian with sigma
``(0, s, s)``, an opening with a ``(1, k, k)`` footprint, percentiles along
one flattened axis. Nothing crosses planes. The results equal the NumPy
references up to float32 rounding (the references use blocked BLAS
products; the twins use ``ndimage``), which the tests state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openhcs_nb.functions import _background as bg
from openhcs_nb.functions._xp import namespace_of


def _float_stack(stack: Any, xp: Any) -> Any:
    return stack.astype(xp.float32, copy=False)


def gaussian_blur(stack: Any, *, sigma: float = 2.0) -> Any:
    """Gaussian smoothing within each plane, one filter call for the stack."""
    ns = namespace_of(stack)
    src = _float_stack(stack, ns.xp)
    if sigma <= 0.0:
        return src.copy()
    s = float(sigma)
    return ns.ndi.gaussian_filter(src, (0.0, s, s), mode="nearest", truncate=4.0)


def _block_min(stack: Any, factor: int, xp: Any) -> Any:
    """Minimum over ``factor x factor`` blocks of every plane (edge-padded)."""
    if factor == 1:
        return stack
    n, height, width = stack.shape
    pad_y, pad_x = -height % factor, -width % factor
    if pad_y or pad_x:
        stack = xp.pad(stack, ((0, 0), (0, pad_y), (0, pad_x)), mode="edge")
    small_h, small_w = stack.shape[1] // factor, stack.shape[2] // factor
    rows = stack.reshape(n, small_h, factor, stack.shape[2]).min(axis=2)
    return rows.reshape(n, small_h, small_w, factor).min(axis=3)


def _axis_weights(n_out: int, n_in: int, factor: int, xp: Any) -> tuple[Any, ...]:
    pos = (np.arange(n_out, dtype=np.float64) - (factor - 1) / 2.0) / factor
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.minimum(np.floor(pos).astype(np.intp), max(n_in - 2, 0))
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (pos - lo).astype(np.float32)
    return xp.asarray(lo), xp.asarray(hi), xp.asarray(frac)


def _upsample(small: Any, shape: tuple[int, int], factor: int, xp: Any) -> Any:
    """Linear interpolation from block centres back to ``shape``, all planes."""
    lo_x, hi_x, fx = _axis_weights(shape[1], small.shape[2], factor, xp)
    lo_y, hi_y, fy = _axis_weights(shape[0], small.shape[1], factor, xp)
    across = small[:, :, lo_x] * (1.0 - fx) + small[:, :, hi_x] * fx
    return across[:, lo_y] * (1.0 - fy)[:, None] + across[:, hi_y] * fy[:, None]


def subtract_background(
    stack: Any, *, radius: int = 50, method: str = "rolling_ball"
) -> Any:
    """The reference's shrink-open-interpolate background, whole stack at once."""
    ns = namespace_of(stack)
    xp = ns.xp
    factor = bg.shrink_factor(radius)
    footprint, heights = bg.structuring_element(radius, factor, method)
    small = _block_min(stack, factor, xp).astype(xp.float32, copy=False)
    fp = xp.asarray(footprint[None])
    if heights is None:
        opened = ns.ndi.grey_opening(small, footprint=fp, mode="nearest")
    else:
        structure = xp.asarray(heights.astype(np.float32)[None])
        opened = ns.ndi.grey_opening(
            small, footprint=fp, structure=structure, mode="nearest"
        )
    background = _upsample(opened, stack.shape[1:], factor, xp)
    out = _float_stack(stack, xp) - background
    return xp.maximum(out, xp.float32(0.0), out=out)


def _rescale(stack: Any, lo: Any, hi: Any, xp: Any) -> Any:
    """``(plane - lo) / (hi - lo)`` clipped to [0, 1] per plane; 0 if flat."""
    flat = ~(hi > lo)
    scale = (1.0 / xp.where(flat, 1.0, hi - lo)).astype(xp.float32)
    out = _float_stack(stack, xp) - lo.astype(xp.float32)[:, None, None]
    out *= scale[:, None, None]
    xp.clip(out, xp.float32(0.0), xp.float32(1.0), out=out)
    out[flat] = 0.0
    return out


def _percentiles(stack: Any, low: float, high: float, xp: Any) -> tuple[Any, Any]:
    """Per-plane ``low``/``high`` percentiles (linear), float64."""
    flat = stack.reshape(stack.shape[0], -1)
    values = xp.percentile(flat, xp.asarray([low, high]), axis=1)
    return values[0].astype(xp.float64), values[1].astype(xp.float64)


def percentile_normalize(stack: Any, *, low: float = 1.0, high: float = 99.8) -> Any:
    """Stretch each plane's ``low``/``high`` percentiles to 0 and 1 (float32)."""
    from openhcs_nb.functions._common import check_order

    check_order(low, high, "percentile_normalize", ("low", "high"))
    xp = namespace_of(stack).xp
    lo, hi = _percentiles(stack, low, high, xp)
    return _rescale(stack, lo, hi, xp)


def correct_illumination(
    stack: Any,
    *,
    method: str = "background",
    smoothing: float = 0.1,
    illumination: Any = None,
) -> Any:
    """Each plane divided by the flat field (the plate's, else its own)."""
    from openhcs_nb.errors import PipelineError

    ns = namespace_of(stack)
    xp = ns.xp
    if illumination is None:
        flat = _own_flat_fields(stack, smoothing, ns)
    else:
        flat = xp.asarray(illumination)[None]
        if flat.shape[1:] != stack.shape[1:]:
            raise PipelineError(
                f"correct_illumination: the flat field is {flat.shape[1:]}, the "
                f"plane {stack.shape[1:]}",
                field="illumination",
            )
    return xp.divide(stack, flat, dtype=xp.float32)


def _own_flat_fields(stack: Any, smoothing: float, ns: Any) -> Any:
    """Every plane's own flat field (mean 1), as the reference estimates it."""
    xp, ndi = ns.xp, ns.ndi
    shape = stack.shape[1:]
    sigma = max(1.0, smoothing * min(shape))
    small = max(1, int(sigma // 4))
    coarse = stack[:, ::small, ::small].astype(xp.float32)
    smooth = ndi.gaussian_filter(
        coarse, (0.0, sigma / small, sigma / small), mode="nearest"
    )
    zoom = (1.0, shape[0] / smooth.shape[1], shape[1] / smooth.shape[2])
    full = ndi.zoom(smooth, zoom, order=1, mode="nearest", grid_mode=True)
    full = xp.maximum(full[:, : shape[0], : shape[1]], np.finfo(np.float32).tiny)
    means = full.mean(axis=(1, 2), keepdims=True)
    return (full / means).astype(xp.float32)


def project_z(stack: Any, *, method: str = "max") -> Any:
    """Maximum (dtype kept) or mean (float32) over the stack axis."""
    xp = namespace_of(stack).xp
    if method == "max":
        return stack.max(axis=0, keepdims=True)
    return stack.mean(axis=0, dtype=xp.float32, keepdims=True)


def composite_channels(
    stack: Any, *, method: str = "mean", low: float = 0.0, high: float = 100.0
) -> Any:
    """Scale each plane to [0, 1] and combine them into one float32 plane."""
    from openhcs_nb.functions._common import check_order

    check_order(low, high, "composite_channels", ("low", "high"))
    xp = namespace_of(stack).xp
    if low == 0.0 and high == 100.0:
        lo = stack.min(axis=(1, 2)).astype(xp.float64)
        hi = stack.max(axis=(1, 2)).astype(xp.float64)
    else:
        lo, hi = _percentiles(stack, low, high, xp)
    scaled = _rescale(stack, lo, hi, xp)
    if method == "max":
        return scaled.max(axis=0, keepdims=True)
    total = scaled.sum(axis=0, keepdims=True, dtype=xp.float32)
    return total * xp.float32(1.0 / stack.shape[0])
