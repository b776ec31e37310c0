"""Per-field image quality (CellProfiler MeasureImageQuality), for QC flags.

- ``focus_score``: normalised variance, ``var / mean`` of the field; blur
  lowers it. ``local_focus_mean`` / ``local_focus_min`` are the same score on
  ``tile``-sized tiles, which catches a field that is only partly out of focus.
- ``detail_fraction``: the share of the field's variance left after a
  Gaussian blur of sigma :data:`DETAIL_SIGMA` is subtracted, that is the
  share held by fine detail. Blur lowers it; the number of objects does
  not, since each object adds to both its variance and its detail, whereas
  ``focus_score`` grows with how much of the field objects cover. It is
  what a field is compared with its siblings by (``flag_blurred_fields``).
- ``power_log_log_slope``: slope of the radially averaged power spectrum
  against spatial frequency, both on log axes. Blur removes high
  frequencies, so a blurred field has a steeper (more negative) slope.
- ``saturated_fraction``: share of pixels at or above ``saturation_value``;
  without one, at the dtype's maximum for integer images, or at the field's
  own maximum for float images (CellProfiler's "percent maximal").
- ``intensity_p<q>``: percentiles of the field, plus mean, min and max.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from openhcs_nb.errors import PipelineError

PERCENTILES: tuple[int, ...] = (1, 5, 25, 50, 75, 95, 99)
#: Gaussian sigma (px) below which variance counts as fine detail. On the
#: demo plate, 4 px put the blurred field at 0.29-0.35 of its well's median
#: and every sharp field at 0.84 or more (2 px: 0.17-0.52 against 0.83).
DETAIL_SIGMA = 4.0


def _normalised_variance(values: np.ndarray) -> float:
    """``var / mean``, NaN when the mean is not positive."""
    mean = float(values.mean())
    return float(values.var() / mean) if mean > 0 else float("nan")


def detail_fraction(plane: np.ndarray, sigma: float = DETAIL_SIGMA) -> float:
    """``var(plane - gaussian(plane, sigma)) / var(plane)``; NaN for a flat field."""
    total = float(plane.var())
    if not total > 0:
        return float("nan")
    residual = plane - ndi.gaussian_filter(plane, sigma, mode="nearest")
    return float(residual.var() / total)


def _tile_scores(plane: np.ndarray, tile: int) -> np.ndarray:
    """Normalised variance of every whole ``tile`` x ``tile`` block."""
    rows, cols = plane.shape[0] // tile, plane.shape[1] // tile
    if rows == 0 or cols == 0:
        return np.array([_normalised_variance(plane)])
    blocks = plane[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile)
    mean = blocks.mean(axis=(1, 3))
    var = blocks.var(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, var / mean, np.nan).ravel()


def power_log_log_slope(plane: np.ndarray) -> float:
    """Least-squares slope of log power against log frequency (radial mean).

    Frequencies are binned by their radius in units of one cycle per the
    shorter side, from 1 to half that side; the zero frequency is left out.
    """
    centred = plane - plane.mean()
    power = np.abs(np.fft.fft2(centred)) ** 2
    fy = np.fft.fftfreq(plane.shape[0])[:, None]
    fx = np.fft.fftfreq(plane.shape[1])[None, :]
    side = min(plane.shape)
    radius = np.rint(np.hypot(fy, fx) * side).astype(np.intp)
    keep = (radius >= 1) & (radius <= side // 2)
    sums = np.bincount(radius[keep], weights=power[keep])
    counts = np.bincount(radius[keep])
    bins = np.flatnonzero((counts > 0) & (sums > 0))
    if bins.size < 2:
        return float("nan")
    mean_power = sums[bins] / counts[bins]
    slope, _ = np.polyfit(np.log(bins), np.log(mean_power), 1)
    return float(slope)


def image_quality(
    image: np.ndarray, *, saturation_value: float | None = None, tile: int = 64
) -> dict[str, float]:
    """Quality measures of one 2-D field (see the module docstring).

    Raises
    ------
    PipelineError
        The image is not 2-D or is empty.
    """
    raw = np.asarray(image)
    if raw.ndim != 2 or raw.size == 0:
        raise PipelineError(
            f"image_quality needs a non-empty 2-D field, got shape {raw.shape}",
            field="image",
        )
    plane = raw.astype(np.float64)
    if saturation_value is not None:
        saturated = plane >= saturation_value
    elif np.issubdtype(raw.dtype, np.integer):
        saturated = raw == np.iinfo(raw.dtype).max
    else:
        saturated = plane == plane.max()
    local = _tile_scores(plane, tile)
    quality = {
        "focus_score": _normalised_variance(plane),
        "local_focus_mean": float(np.nanmean(local))
        if np.isfinite(local).any()
        else float("nan"),
        "local_focus_min": float(np.nanmin(local))
        if np.isfinite(local).any()
        else float("nan"),
        "detail_fraction": detail_fraction(plane),
        "power_log_log_slope": power_log_log_slope(plane),
        "saturated_fraction": float(np.count_nonzero(saturated) / plane.size),
        "intensity_mean": float(plane.mean()),
        "intensity_min": float(plane.min()),
        "intensity_max": float(plane.max()),
    }
    for q, value in zip(PERCENTILES, np.percentile(plane, PERCENTILES), strict=True):
        quality[f"intensity_p{q}"] = float(value)
    return quality


def flag_field(
    quality: dict[str, float], *, min_slope: float, max_saturated: float
) -> bool:
    """True when a field fails QC: too blurred (or unmeasurable) or saturated.

    A slope below ``min_slope`` (steeper than allowed) means blur; a
    saturated fraction above ``max_saturated`` means clipped signal.
    """
    slope = quality["power_log_log_slope"]
    if not np.isfinite(slope) or slope < min_slope:
        return True
    return bool(quality["saturated_fraction"] > max_saturated)
