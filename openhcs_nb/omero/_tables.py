"""Measurements as OMERO.tables, following the bulk-annotation conventions.

OMERO.web finds a plate's measurements in a table whose FileAnnotation has the
namespace :data:`BULK_NS` and is linked to the plate, with a ``Well``
(``WellColumn``) column holding Well ids: that is how it colours wells and
shows a well's row. ``Plate`` (``PlateColumn``) and ``Image`` (``ImageColumn``)
id columns and a ``Well Name`` string follow the same conventions as
``omero-metadata populate``. Numbers become ``DoubleColumn`` (integers with
missing values too, as NaN), whole numbers ``LongColumn``, booleans
``BoolColumn``, text ``StringColumn``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from openhcs_nb.omero.errors import WritebackError
from openhcs_nb.omero.gateway import Gateway

BULK_NS = "openmicroscopy.org/omero/bulk_annotations"
OBJECTS_NS = "openhcs-nb/objects"
#: Rows sent per ``addData`` call, well below Ice's message size limit.
ROWS_PER_CALL = 10_000
#: The repository id OMERO.tables ignores but the API requires (as in populate).
TABLES_REPO = 1


@dataclass(frozen=True)
class Column:
    """One table column: its omero.grid class name, name and values."""

    kind: str
    name: str
    values: list[Any]
    description: str = ""

    def grid(self, grid: Any, rows: slice | None = None) -> Any:
        """The ``omero.grid`` column, filled with ``values[rows]`` (or empty)."""
        values = [] if rows is None else self.values[rows]
        cls = getattr(grid, self.kind)
        if self.kind == "StringColumn":
            size = max([len(v.encode()) for v in self.values] or [1]) or 1
            return cls(self.name, self.description, size, values)
        return cls(self.name, self.description, values)


def id_column(kind: str, name: str, ids: Sequence[int]) -> Column:
    """A ``WellColumn``/``ImageColumn``/``PlateColumn``/``RoiColumn`` of ids."""
    return Column(kind, name, [int(i) for i in ids])


def measurement_columns(frame: pd.DataFrame, skip: Sequence[str]) -> list[Column]:
    """One column per remaining field of ``frame``, typed by its values."""
    out = []
    for name in frame.columns:
        if name in skip:
            continue
        series = frame[name]
        if pd.api.types.is_bool_dtype(series) and not series.isna().any():
            out.append(Column("BoolColumn", name, [bool(v) for v in series]))
        elif pd.api.types.is_integer_dtype(series) and not series.isna().any():
            out.append(Column("LongColumn", name, [int(v) for v in series]))
        elif pd.api.types.is_numeric_dtype(series):
            values = pd.to_numeric(series, errors="coerce").astype("float64")
            out.append(Column("DoubleColumn", name, values.fillna(np.nan).tolist()))
        else:
            text = ["" if pd.isna(v) else str(v) for v in series]
            out.append(Column("StringColumn", name, text))
    return out


def _chunks(n_rows: int) -> Iterator[slice]:
    for start in range(0, max(n_rows, 1), ROWS_PER_CALL):
        yield slice(start, min(start + ROWS_PER_CALL, n_rows))


def write_table(
    gateway: Gateway, name: str, columns: list[Column], ctx: dict[str, str] | None
) -> Any:
    """Create an OMERO.tables table holding ``columns``; return its OriginalFile.

    Raises
    ------
    WritebackError
        The server has no OMERO.tables service, or the columns disagree in length.
    """
    from openhcs_nb.omero.gateway import load_omero

    grid = load_omero().grid
    lengths = {len(c.values) for c in columns}
    if len(lengths) != 1:
        raise WritebackError(f"table {name}: columns of different lengths {lengths}")
    table = gateway.getSharedResources().newTable(TABLES_REPO, name, ctx)
    if table is None:
        raise WritebackError(
            "this OMERO server has no OMERO.tables service (newTable returned None)"
        )
    try:
        table.initialize([c.grid(grid) for c in columns])
        for rows in _chunks(lengths.pop()):
            if rows.stop > rows.start:
                table.addData([c.grid(grid, rows) for c in columns])
        return table.getOriginalFile()
    finally:
        table.close()
