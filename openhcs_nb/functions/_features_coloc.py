"""Colocalisation of two channels per object and per field.

Definitions, over the pixels of one object (or the field mask):

- ``pearson``: Pearson's r between the two channels.
- ``manders_m1``: share of channel ``a``'s intensity found where ``b`` is
  above its threshold; ``manders_m2`` the same for ``b`` where ``a`` is
  above its own. This is the definition of ``skimage.measure``'s
  ``manders_coloc_coeff`` (the denominator is the object's whole
  intensity); CellProfiler instead divides by the above-threshold intensity.
- ``overlap``: Manders' overlap coefficient, ``sum(ab) / sqrt(sum(a²) sum(b²))``.

Thresholds default to Otsu's threshold of each whole field, so objects of one
field share them. A statistic whose denominator is zero is NaN.
"""

from __future__ import annotations

import numpy as np

from openhcs_nb.functions._features_shape import (
    Table,
    check_labels,
    check_plane,
    object_index,
)


def _otsu(plane: np.ndarray) -> float:
    """Otsu's threshold of the finite pixels; a constant field gives its value."""
    from skimage.filters import threshold_otsu

    finite = plane[np.isfinite(plane)]
    if finite.size == 0 or finite.min() == finite.max():
        return float(finite.min()) if finite.size else 0.0
    return float(threshold_otsu(finite))


def colocalisation(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    threshold_a: float | None = None,
    threshold_b: float | None = None,
) -> Table:
    """Pearson, Manders M1/M2 and overlap per object (see module docstring).

    Raises
    ------
    PipelineError
        Bad labels, or a channel whose shape differs from the labels.
    """
    labels = check_labels(labels, "colocalisation")
    plane_a = check_plane(a, labels.shape, "colocalisation")
    plane_b = check_plane(b, labels.shape, "colocalisation")
    limit_a = _otsu(plane_a) if threshold_a is None else float(threshold_a)
    limit_b = _otsu(plane_b) if threshold_b is None else float(threshold_b)
    present, index, which = object_index(labels)
    n = present.size
    va = plane_a.ravel()[index]
    vb = plane_b.ravel()[index]

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(which, weights=weights, minlength=n)

    area = np.bincount(which, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_a, sum_b = total(va), total(vb)
        da = va - (sum_a / area)[which]
        db = vb - (sum_b / area)[which]
        spread = np.sqrt(total(da * da) * total(db * db))
        pearson = np.where(spread > 0, total(da * db) / spread, np.nan)
        m1 = np.where(
            sum_a != 0, total(np.where(vb > limit_b, va, 0.0)) / sum_a, np.nan
        )
        m2 = np.where(
            sum_b != 0, total(np.where(va > limit_a, vb, 0.0)) / sum_b, np.nan
        )
        norm = np.sqrt(total(va * va) * total(vb * vb))
        overlap = np.where(norm > 0, total(va * vb) / norm, np.nan)
    return {
        "label": present,
        "pearson": pearson,
        "manders_m1": m1,
        "manders_m2": m2,
        "overlap": overlap,
    }


def field_colocalisation(
    a: np.ndarray,
    b: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    threshold_a: float | None = None,
    threshold_b: float | None = None,
) -> dict[str, float]:
    """The same statistics over a whole field, or the pixels of ``mask``.

    Otsu thresholds are still taken over the whole field, not the mask.

    Raises
    ------
    PipelineError
        The channels or the mask differ in shape.
    """
    plane_a = np.asarray(a)
    region = np.ones(plane_a.shape, np.int8) if mask is None else np.asarray(mask)
    labels = (region > 0).astype(np.int8) if region.ndim == 2 else region
    table = colocalisation(
        labels, a, b, threshold_a=threshold_a, threshold_b=threshold_b
    )
    names = ("pearson", "manders_m1", "manders_m2", "overlap")
    if table["label"].size == 0:
        return dict.fromkeys(names, float("nan"))
    return {name: float(table[name][0]) for name in names}
