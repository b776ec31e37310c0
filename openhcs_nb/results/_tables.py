"""The plate-wide Parquet tables, gathered from the workers' per-well parts.

Workers write ``parts/<well>.parquet`` (objects) and, when they measure image
quality, ``parts/<well>.fields.parquet`` (one row per field). Object tables
may hold several object sets with different columns; they are joined as a
union of columns, missing values as NaN, so a set never loses a measurement
because another set lacks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FIELDS_SUFFIX = ".fields.parquet"


def wells_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The per-well table with a fixed column order: ids, status, then numbers."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["well", "row", "column", "status", "error"])
    first = ["well", "row", "column", "status", "count"]
    ordered = [c for c in first if c in frame] + sorted(
        c for c in frame if c not in first and c != "error"
    )
    frame = frame[[*ordered, "error"]]
    if "count" in frame:
        frame["count"] = frame["count"].astype("Int64")
    return frame.reset_index(drop=True)


def write_part(path: Path, well: str, table: Mapping[str, np.ndarray]) -> None:
    """One well's table as a Parquet part (nothing for an empty table)."""
    if table:
        pd.DataFrame({"well": well, **table}).to_parquet(path, index=False)


def object_parts(parts: Path) -> list[Path]:
    """The per-well object tables (``<well>.parquet``), sorted by well."""
    return sorted(p for p in parts.glob("*.parquet") if "." not in p.stem)


def field_parts(parts: Path) -> list[Path]:
    """The per-well field tables (``<well>.fields.parquet``), sorted by well."""
    return sorted(parts.glob(f"*{FIELDS_SUFFIX}"))


def gather(files: list[Path]) -> pd.DataFrame:
    """Concatenate Parquet parts; columns are the union, NaN where missing.

    An ``object_set`` column stays a string column even where some parts
    lack it (those rows get a missing value, not a float NaN).
    """
    frames = [pd.read_parquet(p) for p in files]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({"well": pd.Series(dtype=str)})
    columns: list[str] = []
    for frame in frames:
        columns += [c for c in frame.columns if c not in columns]
    joined = pd.concat([f.reindex(columns=columns) for f in frames], ignore_index=True)
    if "object_set" in joined:
        joined["object_set"] = joined["object_set"].astype("string")
    return joined
