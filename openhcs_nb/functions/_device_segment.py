"""Device twins of thresholding, labelling and label clean-up, batched.

Planes are labelled together with a 3-D structure that has no connectivity
across the stack axis, so components never join two planes; per-plane ids
are restored by subtracting each plane's first id (both SciPy and cupyx
number components in raster order). Thresholds build every plane's
histogram in one ``bincount`` on the device (the O(pixels) part) and run the
Otsu / Li arithmetic on the small histograms on the host, exactly as the
reference does. Results equal the references bit for bit; the watershed
(``watershed_split`` and the declumping in ``identify_primary``) has no
cuCIM equivalent and stays on the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openhcs_nb.functions._xp import namespace_of

_OTSU_BINS = 256
_LI_BINS = 4096
_LI_MAX_ITER = 200


def _planar(connectivity: int) -> np.ndarray:
    """A ``(3, 3, 3)`` structure connecting pixels within a plane only."""
    structure = np.zeros((3, 3, 3), dtype=bool)
    if connectivity == 1:
        structure[1, 1, :] = structure[1, :, 1] = True
    else:
        structure[1] = True
    return structure


def histograms(stack: Any, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Host ``(n, bins)`` counts plus each plane's min and max (float64).

    The binning is the reference's (``_threshold.histogram``): float32
    offsets scaled by ``float32(bins / (hi - lo))``, clipped to the last bin.
    Constant planes come back with all counts in bin 0.
    """
    ns = namespace_of(stack)
    xp = ns.xp
    n = stack.shape[0]
    lo = stack.min(axis=(1, 2)).astype(xp.float64)
    hi = stack.max(axis=(1, 2)).astype(xp.float64)
    flat = hi <= lo
    scale = xp.where(flat, 0.0, bins / xp.where(flat, 1.0, hi - lo)).astype(xp.float32)
    index = stack.astype(xp.float32) - lo.astype(xp.float32)[:, None, None]
    index *= scale[:, None, None]
    idx = index.astype(xp.intp)
    xp.minimum(idx, bins - 1, out=idx)
    idx += (xp.arange(n, dtype=xp.intp) * bins)[:, None, None]
    counts = xp.bincount(idx.ravel(), minlength=n * bins).reshape(n, bins)
    return (
        ns.to_host(counts).astype(np.float64),
        ns.to_host(lo),
        ns.to_host(hi),
    )


def _centres(lo: float, hi: float, bins: int) -> np.ndarray:
    width = (hi - lo) / bins
    return lo + width * (np.arange(bins, dtype=np.float64) + 0.5)


def _otsu(counts: np.ndarray, lo: float, hi: float) -> float:
    centres = _centres(lo, hi, counts.size)
    weight_lo = np.cumsum(counts)
    weight_hi = np.cumsum(counts[::-1])[::-1]
    mass_lo = np.cumsum(counts * centres)
    mass_hi = np.cumsum((counts * centres)[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_lo = mass_lo / weight_lo
        mean_hi = mass_hi / weight_hi
    between = weight_lo[:-1] * weight_hi[1:] * (mean_lo[:-1] - mean_hi[1:]) ** 2
    return float(centres[int(np.nanargmax(between))])


def _li(counts: np.ndarray, lo_value: float, hi_value: float) -> float:
    centres = _centres(lo_value, hi_value, counts.size)
    lo = centres[0] - (centres[1] - centres[0]) / 2.0
    values = centres - lo
    tolerance = (values[1] - values[0]) / 2.0
    cum_n = np.cumsum(counts)
    cum_mass = np.cumsum(counts * values)
    total_n, total_mass = cum_n[-1], cum_mass[-1]
    t_next = total_mass / total_n
    t_curr = -2.0 * tolerance
    for _ in range(_LI_MAX_ITER):
        if abs(t_next - t_curr) <= tolerance:
            break
        t_curr = t_next
        k = int(np.searchsorted(values, t_curr, side="right"))
        n_back, m_back = (cum_n[k - 1], cum_mass[k - 1]) if k > 0 else (0.0, 0.0)
        n_fore, m_fore = total_n - n_back, total_mass - m_back
        if n_back == 0 or n_fore == 0:
            break
        mean_back, mean_fore = m_back / n_back, m_fore / n_fore
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return float(t_next + lo)


def threshold_values(stack: Any, method: str) -> np.ndarray:
    """Each plane's Otsu or Li threshold (float64, on the host)."""
    bins = _OTSU_BINS if method == "otsu" else _LI_BINS
    counts, lo, hi = histograms(stack, bins)
    rule = _otsu if method == "otsu" else _li
    return np.array(
        [
            float(lo[i]) if not hi[i] > lo[i] else rule(counts[i], lo[i], hi[i])
            for i in range(counts.shape[0])
        ]
    )


def _apply(stack: Any, values: np.ndarray) -> Any:
    """``plane > value`` per plane, compared in the dtype NumPy's scalar rule uses."""
    xp = namespace_of(stack).xp
    cut = values.astype(stack.dtype) if stack.dtype.kind == "f" else values
    return stack > xp.asarray(cut)[:, None, None]


def threshold_otsu(stack: Any) -> Any:
    """Foreground ``plane > otsu(plane)`` for every plane."""
    return _apply(stack, threshold_values(stack, "otsu"))


def threshold_li(stack: Any) -> Any:
    """Foreground ``plane > li(plane)`` for every plane."""
    return _apply(stack, threshold_values(stack, "li"))


def threshold_manual(stack: Any, *, value: float) -> Any:
    """Foreground ``plane > value`` with one value for every plane."""
    return _apply(stack, np.full(stack.shape[0], float(value)))


def _label_planes(mask: Any, connectivity: int) -> Any:
    """Connected components of every plane in one call, ids 1..k per plane."""
    ns = namespace_of(mask)
    xp = ns.xp
    # The structure stays a NumPy array: cupyx reads it on the host.
    labels, _ = ns.ndi.label(mask, structure=_planar(connectivity))
    labels = labels.astype(xp.int32, copy=False)
    top = xp.iinfo(xp.int32).max
    first = xp.where(labels > 0, labels, top).min(axis=(1, 2))
    offset = xp.where(first == top, 0, first - 1).astype(xp.int32)
    labels -= offset[:, None, None]
    labels[mask == 0] = 0
    return labels


def label_objects(stack: Any, *, connectivity: int = 1) -> Any:
    """Connected components of each plane's mask, as int32 labels."""
    xp = namespace_of(stack).xp
    return _label_planes(stack.astype(xp.bool_, copy=False), connectivity)


def fill_holes(stack: Any) -> Any:
    """Fill background not 4-connected to its plane's border, every plane at once."""
    ns = namespace_of(stack)
    xp = ns.xp
    mask = stack.astype(xp.bool_, copy=False)
    background, count = ns.ndi.label(~mask, structure=_planar(1))
    edges = xp.concatenate(
        (
            background[:, 0].ravel(),
            background[:, -1].ravel(),
            background[:, :, 0].ravel(),
            background[:, :, -1].ravel(),
        )
    )
    keep = xp.zeros(int(count) + 1, dtype=xp.bool_)
    keep[edges] = True
    keep[0] = False
    return ~keep[background]


def remove_small_objects(
    stack: Any, *, min_size: int = 30, max_size: int = 100_000
) -> Any:
    """Drop objects with area outside [min_size, max_size]; relabel 1..n per plane.

    One ``bincount`` over plane-offset ids gives every plane's areas; the
    relabelling is one lookup table for the stack.
    """
    from openhcs_nb.errors import PipelineError

    if min_size > max_size:
        raise PipelineError(
            f"remove_small_objects: min_size={min_size} exceeds max_size={max_size}",
            field="min_size",
        )
    xp = namespace_of(stack).xp
    n = stack.shape[0]
    width = int(stack.max()) + 1 if stack.size else 1
    ids = stack.astype(xp.int64) + (xp.arange(n, dtype=xp.int64) * width)[:, None, None]
    areas = xp.bincount(ids.ravel(), minlength=n * width).reshape(n, width)
    keep = (areas >= min_size) & (areas <= max_size)
    keep[:, 0] = False
    lut = (xp.cumsum(keep, axis=1) * keep).astype(xp.int32)
    return lut.ravel()[ids]


def expand_labels(stack: Any, *, distance: int = 10) -> Any:
    """Grow labels into background up to ``distance`` px, nearest label wins.

    One distance transform for the stack: the stack axis is given a spacing
    longer than any in-plane distance, so a pixel's nearest label is always
    in its own plane when the plane has one, and a plane without labels
    stays empty (its nearest label is farther than ``distance``).
    """
    ns = namespace_of(stack)
    xp = ns.xp
    labels = stack.astype(xp.int32, copy=False)
    background = labels == 0
    if distance == 0 or not bool(background.any()) or bool(background.all()):
        return labels.copy()
    _, height, width = labels.shape
    far = float(height + width + distance + 1)
    dist, (iz, iy, ix) = ns.ndi.distance_transform_edt(
        background, sampling=(far, 1.0, 1.0), return_indices=True
    )
    grown = labels[iz, iy, ix]
    grown[dist > distance] = 0
    return grown
