"""Intensity features per object (CellProfiler MeasureObjectIntensity).

Sums are ``bincount`` over foreground pixels; order statistics (min, median,
max) come from one sort of the foreground by (object, value), so memory stays
linear in the number of foreground pixels whatever the number of objects.

Edge pixels are the object's pixels with at least one of their 8 neighbours
outside the object (another label, background, or beyond the image border),
which is CellProfiler's outline for ``MeanIntensityEdge``.
"""

from __future__ import annotations

import numpy as np

from openhcs_nb.functions._features_shape import (
    Table,
    check_labels,
    check_plane,
    object_index,
)


def edge_mask(labels: np.ndarray) -> np.ndarray:
    """Object pixels with an 8-neighbour of another value (or the border)."""
    padded = np.pad(labels, 1)
    height, width = labels.shape
    differs = np.zeros(labels.shape, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                shifted = padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
                differs |= shifted != labels
    return differs & (labels > 0)


def _object_value_key(which: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A ``uint64`` that sorts by object, then by value.

    float32 (and 8/16-bit integers, exact in float32) use the value's bits,
    flipped so that unsigned order is numeric order; wider types use ranks.
    """
    high = which.astype(np.uint64) << np.uint64(32)
    if values.dtype == np.float32 or (
        values.dtype.kind in "ui" and values.dtype.itemsize <= 2
    ):
        bits = values.astype(np.float32, copy=False).view(np.uint32)
        negative = (bits & np.uint32(0x80000000)) != 0
        low = np.where(negative, ~bits, bits | np.uint32(0x80000000))
        return high | low.astype(np.uint64)
    ranks = np.empty(values.size, dtype=np.uint64)
    ranks[np.argsort(values, kind="stable")] = np.arange(values.size, dtype=np.uint64)
    return high | ranks


def _order_statistics(
    which: np.ndarray, values: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum, median and maximum per object from one (object, value) sort.

    One ``argsort`` of a 64-bit key (object in the high half, the value's
    order in the low half) is ~4x faster than ``np.lexsort`` on the two keys.
    """
    order = np.argsort(_object_value_key(which, values))
    ranked = values[order]
    sizes = np.bincount(which, minlength=count)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if count == 0:
        empty = np.zeros(0)
        return empty, empty, empty
    low = ranked[starts + (sizes - 1) // 2]
    high = ranked[starts + sizes // 2]
    return ranked[starts], (low + high) / 2.0, ranked[starts + sizes - 1]


def intensity_features(labels: np.ndarray, image: np.ndarray) -> Table:
    """Intensity columns for every object, aligned to ``present_labels``.

    ``intensity_std`` is the population standard deviation (as regionprops),
    and ``mass_displacement`` the distance in pixels between the
    intensity-weighted and the geometric centroid (NaN for an object whose
    intensities sum to zero).

    Raises
    ------
    PipelineError
        The labels are not 2-D integers, or the image has another shape.
    """
    labels = check_labels(labels, "intensity_features")
    plane = check_plane(image, labels.shape, "intensity_features")
    present, index, which = object_index(labels)
    n = present.size
    values = plane.ravel()[index]
    ys, xs = np.divmod(index, labels.shape[1])
    area = np.bincount(which, minlength=n).astype(np.float64)
    total = np.bincount(which, weights=values, minlength=n)
    edge = edge_mask(labels).ravel()[index]
    edge_count = np.bincount(which[edge], minlength=n)
    edge_total = np.bincount(which[edge], weights=values[edge], minlength=n)
    low, median, high = _order_statistics(which, values, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / area
        spread = np.bincount(which, weights=(values - mean[which]) ** 2, minlength=n)
        cy = np.bincount(which, weights=ys, minlength=n) / area
        cx = np.bincount(which, weights=xs, minlength=n) / area
        weighted = np.where(total != 0, total, np.nan)
        wy = np.bincount(which, weights=ys * values, minlength=n) / weighted
        wx = np.bincount(which, weights=xs * values, minlength=n) / weighted
        edge_mean = np.where(edge_count > 0, edge_total / edge_count, np.nan)
    return {
        "label": present,
        "intensity_mean": mean,
        "intensity_median": median,
        "intensity_std": np.sqrt(spread / area),
        "intensity_min": low,
        "intensity_max": high,
        "intensity_integrated": total,
        "intensity_edge_mean": edge_mean,
        "mass_displacement": np.hypot(wy - cy, wx - cx),
    }
