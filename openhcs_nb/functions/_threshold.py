"""Global thresholds computed per plane from a histogram.

Both automatic methods work on a histogram rather than on the pixels, so a
2048 x 2048 plane costs one min/max pass and one ``bincount`` (~20 ms), and
each Li iteration costs O(bins) instead of O(pixels). The conventions follow
scikit-image: Otsu uses 256 bins spanning the plane's range and returns a bin
centre; foreground is ``plane > threshold``.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from msgspec import Meta

from openhcs_nb.functions._common import as_stack
from openhcs_nb.spec import Function

_OTSU_BINS = 256
_LI_BINS = 4096
_LI_MAX_ITER = 200


def histogram(plane: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Counts and bin centres over the plane's range; None for a constant plane."""
    lo, hi = float(plane.min()), float(plane.max())
    if not hi > lo:
        return None
    scale = np.float32(bins / (hi - lo))
    index = np.subtract(plane, np.float32(lo), dtype=np.float32)
    np.multiply(index, scale, out=index)
    idx = index.astype(np.intp).ravel()
    np.minimum(idx, bins - 1, out=idx)
    counts = np.bincount(idx, minlength=bins).astype(np.float64)
    width = (hi - lo) / bins
    centres = lo + width * (np.arange(bins, dtype=np.float64) + 0.5)
    return counts, centres


def otsu_value(plane: np.ndarray) -> float:
    """Otsu's threshold: the cut maximising the between-class variance."""
    hist = histogram(plane, _OTSU_BINS)
    if hist is None:
        return float(plane.flat[0])
    counts, centres = hist
    weight_lo = np.cumsum(counts)
    weight_hi = np.cumsum(counts[::-1])[::-1]
    mass_lo = np.cumsum(counts * centres)
    mass_hi = np.cumsum((counts * centres)[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_lo = mass_lo / weight_lo
        mean_hi = mass_hi / weight_hi
    between = weight_lo[:-1] * weight_hi[1:] * (mean_lo[:-1] - mean_hi[1:]) ** 2
    return float(centres[int(np.nanargmax(between))])


def li_value(plane: np.ndarray) -> float:
    """Li's minimum cross-entropy threshold, iterated on a fine histogram.

    Intensities are shifted so the lowest bin centre is positive (the method
    takes logarithms of class means), as scikit-image does with the minimum.
    """
    hist = histogram(plane, _LI_BINS)
    if hist is None:
        return float(plane.flat[0])
    counts, centres = hist
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
        k = int(np.searchsorted(values, t_curr, side="right"))  # bins <= t: background
        n_back, m_back = (cum_n[k - 1], cum_mass[k - 1]) if k > 0 else (0.0, 0.0)
        n_fore, m_fore = total_n - n_back, total_mass - m_back
        if n_back == 0 or n_fore == 0:
            break
        mean_back, mean_fore = m_back / n_back, m_fore / n_fore
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return float(t_next + lo)


def _apply(stack: np.ndarray, values: list[float]) -> np.ndarray:
    out = np.empty(stack.shape, dtype=bool)
    for i, (plane, value) in enumerate(zip(stack, values, strict=True)):
        np.greater(plane, value, out=out[i])
    return out


def _threshold_otsu(stack: np.ndarray) -> np.ndarray:
    """Foreground mask ``plane > otsu(plane)``, per plane."""
    stack = as_stack(stack, "threshold_otsu")
    return _apply(stack, [otsu_value(plane) for plane in stack])


def _threshold_li(stack: np.ndarray) -> np.ndarray:
    """Foreground mask ``plane > li(plane)``, per plane."""
    stack = as_stack(stack, "threshold_li")
    return _apply(stack, [li_value(plane) for plane in stack])


def _threshold_manual(
    stack: np.ndarray,
    *,
    value: Annotated[
        float,
        Meta(
            ge=0,
            le=65_535,
            description=(
                "intensity threshold in the image's units "
                "(0-1 after normalisation, up to 65535 for 16-bit)"
            ),
        ),
    ],
) -> np.ndarray:
    """Foreground mask ``plane > value`` with one fixed value for every plane.

    ``value`` has no default: a fixed threshold only means something for
    one acquisition, so the user must choose it.
    """
    stack = as_stack(stack, "threshold_manual")
    return _apply(stack, [float(value)] * stack.shape[0])


threshold_otsu = Function(
    name="threshold_otsu",
    version="1",
    impl=_threshold_otsu,
    help="Foreground where the pixel is above Otsu's threshold of its plane.",
    category="segmentation",
    input="image",
    output="mask",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:threshold_otsu",
)

threshold_li = Function(
    name="threshold_li",
    version="1",
    impl=_threshold_li,
    help="Foreground above Li's minimum cross-entropy threshold of its plane.",
    category="segmentation",
    input="image",
    output="mask",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:threshold_li",
)

threshold_manual = Function(
    name="threshold_manual",
    version="1",
    impl=_threshold_manual,
    help="Foreground where the pixel is above a fixed value.",
    category="segmentation",
    input="image",
    output="mask",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:threshold_manual",
)
