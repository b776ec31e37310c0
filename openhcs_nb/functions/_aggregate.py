"""Per-well summaries of an object table (one row per object, many fields).

NaN values (objects a feature could not be measured on) are left out of
every statistic instead of poisoning it; a feature with no finite value has
NaN statistics. ``<feature>_std`` is the population standard deviation.
``fraction_positive_<feature>`` is the share of measured objects whose value
is strictly above the threshold.
"""

from __future__ import annotations

import numpy as np

from openhcs_nb.errors import PipelineError

Table = dict[str, np.ndarray]

# Columns that identify objects rather than measure them.
_IDENTIFIERS: frozenset[str] = frozenset({"label", "object_number"})


def _numeric_columns(objects: Table) -> list[str]:
    """Names of numeric, non-identifier columns, in table order."""
    return [
        name
        for name, column in objects.items()
        if name not in _IDENTIFIERS
        and np.issubdtype(np.asarray(column).dtype, np.number)
        and not np.issubdtype(np.asarray(column).dtype, np.complexfloating)
    ]


def _column(objects: Table, name: str, rows: int) -> np.ndarray:
    """A feature column as float64, checked to exist and to have ``rows`` rows.

    Raises
    ------
    PipelineError
        The column is missing or its length differs from the table's.
    """
    if name not in objects:
        raise PipelineError(f"well_aggregates: no column {name!r}", field="features")
    values = np.asarray(objects[name], dtype=np.float64)
    if values.shape != (rows,):
        raise PipelineError(
            f"well_aggregates: column {name!r} has shape {values.shape}, "
            f"expected ({rows},)",
            field="objects",
        )
    return values


def well_aggregates(
    objects: Table,
    *,
    features: list[str] | None = None,
    positive: dict[str, float] | None = None,
) -> dict[str, float]:
    """Object count plus mean, median and std of each feature, NaN-aware.

    ``features`` defaults to every numeric column except identifiers.
    ``positive`` maps a feature to the threshold its positive objects exceed.

    Raises
    ------
    PipelineError
        A named column is missing, or the columns differ in length.
    """
    lengths = {len(np.asarray(column)) for column in objects.values()}
    if len(lengths) > 1:
        raise PipelineError(
            f"well_aggregates: columns differ in length {sorted(lengths)}",
            field="objects",
        )
    rows = lengths.pop() if lengths else 0
    names = _numeric_columns(objects) if features is None else list(features)
    summary: dict[str, float] = {"count": float(rows)}
    for name in names:
        values = _column(objects, name, rows)
        finite = values[np.isfinite(values)]
        if finite.size:
            stats = (finite.mean(), np.median(finite), finite.std())
        else:
            stats = (np.nan, np.nan, np.nan)
        for suffix, value in zip(("mean", "median", "std"), stats, strict=True):
            summary[f"{name}_{suffix}"] = float(value)
    for name, threshold in (positive or {}).items():
        values = _column(objects, name, rows)
        finite = values[np.isfinite(values)]
        share = (
            np.count_nonzero(finite > threshold) / finite.size
            if finite.size
            else np.nan
        )
        summary[f"fraction_positive_{name}"] = float(share)
    return summary
