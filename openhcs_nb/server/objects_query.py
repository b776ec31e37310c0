"""Object rows of one finished well, for object inspection: answers WellObjects.

A viewer that shows a well's labels asks once per field for that field's rows
of the objects table and then looks objects up by label as the cursor moves,
so hovering never waits on the server. Only measurements travel, never pixels.

Rules:

- Ownership is Status's (:meth:`Handlers.own`): someone else's execution is
  answered exactly like an unknown one.
- The rows come from the part the well's worker wrote, read through
  :meth:`ResultsStore.read_objects`, so a well can be inspected as soon as it
  is done, before the run finalises. Reading it runs on the compile pool, off the loop.
- Refusals are one line: a well that is not in the execution
  (``unknown_well``), not done yet, failed, cancelled, without an objects
  table, a field out of range or an unknown object set (``plate_error``).
- A reply is bounded: more than :data:`MAX_OBJECT_ROWS` rows is refused with a
  hint to ask for one object set.
- Numeric columns travel as raw frames (one per column); text columns, such
  as ``object_set``, as lists. Units are named where the measurement defines
  them (:func:`column_unit`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from openhcs_nb.errors import PlateError, UnknownWellError
from openhcs_nb.plates.model import split_well, well_name
from openhcs_nb.protocol import ArrayPacker
from openhcs_nb.protocol.messages import WellObjects, WellObjectsReply
from openhcs_nb.results.records import ZARR_NAME
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server.job_states import WellState

if TYPE_CHECKING:
    from openhcs_nb.server.handlers import Handlers
    from openhcs_nb.server.peers import Peer

Out = tuple[Any, list[Any]]

#: Rows one reply may carry (about 40 numeric columns: ~16 MB of frames).
MAX_OBJECT_ROWS = 50_000

#: Units of measurements by exact name; the features are in pixels.
_UNITS = {
    "area": "px²",
    "convex_area": "px²",
    "bbox_area": "px²",
    "perimeter": "px",
    "major_axis_length": "px",
    "minor_axis_length": "px",
    "feret_max": "px",
    "centroid_y": "px",
    "centroid_x": "px",
    "nearest_neighbor_distance": "px",
    "orientation": "rad",
    "percent_touching": "%",
}

_WHY_NOT = {
    WellState.PENDING: "has not started yet",
    WellState.RUNNING: "is still running",
    WellState.FAILED: "failed, so it has no objects",
    WellState.CANCELLED: "was cancelled, so it has no objects",
}


def column_unit(name: str) -> str | None:
    """The unit of an objects-table column, where its measurement defines one."""
    return _UNITS.get(name)


def answer_objects(h: Handlers, msg: WellObjects, peer: Peer) -> Out:
    """Answer WellObjects (on the compile pool): the rows of one well and field.

    Raises
    ------
    UnknownExecutionError
        Unknown, or someone else's execution (answered alike).
    UnknownWellError
        The well is not one of the execution's.
    PlateError
        The well is not done, has no objects table, the field or object set
        does not exist, or there are too many rows for one reply.
    """
    record = h.own(msg.execution_id, peer, "well_objects")
    well = _canonical(msg.well)
    states = {w.well: w.state for w in h.store.wells(record.id)}
    if well not in states:
        listed = ", ".join(sorted(states)[:6]) + (", …" if len(states) > 6 else "")
        raise UnknownWellError(
            f"well {well} is not in execution {record.id} (its wells: {listed})"
        )
    if states[well] is not WellState.DONE:
        raise PlateError(f"well {well} {_WHY_NOT[states[well]]}")
    root = h.results_root / record.id
    _check_site(root, well, msg.site)
    frame = read_well_objects(root, well, msg.site, msg.object_set)
    h.audit.record(
        peer,
        "well_objects",
        "ok",
        plate=record.plate,
        execution_id=record.id,
        detail={"well": well, "site": msg.site, "rows": len(frame)},
    )
    return objects_reply(msg.rid, record.id, well, msg.site, frame)


def read_well_objects(
    root: Path, well: str, site: int, object_set: str | None = None
) -> pd.DataFrame:
    """The rows of ``well``'s objects part for field ``site`` (and one set).

    Raises
    ------
    PlateError
        No objects table for the well, an unknown object set, or too many rows.
    """
    frame = ResultsStore(root).read_objects(well, site)
    if object_set is not None:
        sets = sorted({str(s) for s in frame.get("object_set", pd.Series()).dropna()})
        if object_set not in sets:
            raise PlateError(
                f"well {well} field {site} has no object set {object_set!r} "
                f"(it has: {', '.join(sets) or 'none'})"
            )
        frame = frame[frame["object_set"] == object_set]
    if len(frame) > MAX_OBJECT_ROWS:
        raise PlateError(
            f"well {well} field {site} has {len(frame)} objects, more than the "
            f"{MAX_OBJECT_ROWS} one reply carries: ask for one object_set"
        )
    return frame.reset_index(drop=True)


def objects_reply(
    rid: int, execution_id: str, well: str, site: int, frame: pd.DataFrame
) -> Out:
    """``frame`` as a WellObjectsReply: numbers as frames, text as lists."""
    packer = ArrayPacker()
    numbers = []
    text: dict[str, list[str | None]] = {}
    for name in frame.columns:
        values = _numeric(frame[name])
        if values is None:
            text[str(name)] = [None if pd.isna(v) else str(v) for v in frame[name]]
        else:
            numbers.append(packer.add(str(name), values))
    columns = [str(c) for c in frame.columns]
    units = {c: u for c in columns if (u := column_unit(c)) is not None}
    reply = WellObjectsReply(
        rid=rid,
        execution_id=execution_id,
        well=well,
        site=site,
        rows=len(frame),
        columns=columns,
        numbers=numbers,
        text=text,
        units=units,
    )
    return reply, packer.buffers


def _numeric(series: pd.Series) -> np.ndarray | None:
    """A plain numeric array of ``series`` (nullable ones as float, NaN missing)."""
    if pd.api.types.is_bool_dtype(series.dtype) and not series.hasnans:
        return series.to_numpy(dtype=bool)
    if not pd.api.types.is_numeric_dtype(series.dtype):
        return None
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf":
        return np.ascontiguousarray(series.to_numpy())
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _canonical(well: str) -> str:
    return well_name(*split_well(well))


def _check_site(root: Path, well: str, site: int) -> None:
    """Refuse a field outside the plate (the store records the field count)."""
    fields = _field_count(root)
    if site < 0 or (fields is not None and site >= fields):
        top = f"0..{fields - 1}" if fields else "from 0"
        raise PlateError(f"well {well} has no field {site} (fields {top})")


def _field_count(root: Path) -> int | None:
    """The plate's fields per well from the results' OME-Zarr metadata, if any."""
    try:
        attrs = json.loads((root / ZARR_NAME / ".zattrs").read_text())
        return int(attrs["plate"]["field_count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
