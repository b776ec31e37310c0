"""Pure helpers of the plate viewer's state: well statuses, values, channels.

They take plain values and return new ones, so the widget's single writer
(``PlateViewer._apply``) stays short and these rules can be tested alone:

- a well's status is ``queued``, ``running``, ``done``, ``failed`` or
  ``cancelled``; a finished report (done, failed) is never undone;
- once an execution has ended, its wells that never finished read what the
  execution says (``well_state``), else ``cancelled`` for a cancelled run;
- a new channel gets the next colour and a contrast window from its own
  histogram; the user's settings of a known channel are kept;
- of a preview's ``input/<ch>`` and ``<step>/<ch>`` planes, only the input
  channels start visible: overlaying input and output hides both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from openhcs_nb.jupyter._images import CHANNEL_COLORS, auto_contrast, unpack_planes
from openhcs_nb.plates.model import split_well, well_name

FINISHED = frozenset({"done", "failed"})
UNFINISHED = frozenset({"queued", "running"})
ENDED_RUN = frozenset({"done", "failed", "cancelled", "server lost"})


def clean_summary(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Numbers only, as floats; NaN and infinities become None (JSON-safe)."""
    out: dict[str, float | None] = {}
    for key, value in summary.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            continue
        number = float(value)
        out[str(key)] = number if math.isfinite(number) else None
    return out


def ex_error(execution: Any) -> str | None:
    """An execution's overall error, if it has one."""
    error = getattr(execution, "error", None)
    return None if error is None else str(error)


def run_state_text(execution: Any, fallback: str) -> str:
    """What the viewer's state line says: the execution's own state (+ error)."""
    state = getattr(execution, "state", None)
    if not isinstance(state, str) or not state:
        return fallback
    error = ex_error(execution) if state in ENDED_RUN else None
    return f"{state}: {error}" if error else state


def settle_unfinished(status: dict[str, str], execution: Any) -> None:
    """After the run ended: wells still queued/running read their final state."""
    state = getattr(execution, "state", "")
    state_of = getattr(execution, "well_state", None)
    for well, current in list(status.items()):
        if current not in UNFINISHED:
            continue
        if callable(state_of):
            try:
                status[well] = str(state_of(well))
                continue
            except KeyError:
                pass
        if state == "cancelled":
            status[well] = "cancelled"


def channel_settings(
    current: list[Mapping[str, Any]], data: bytes, meta: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Keep the user's settings; new channels get a colour and auto-contrast."""
    settings = [dict(c) for c in current]
    known = {c["name"] for c in settings}
    planes = unpack_planes(data, meta) if meta.get("planes") else {}
    names = [p["name"] for p in meta.get("planes", []) if p["kind"] == "image"]
    has_inputs = any(n.startswith("input/") for n in names)
    for name in names:
        if name in known:
            continue
        lo, hi = auto_contrast(planes[name])
        color = CHANNEL_COLORS[len(settings) % len(CHANNEL_COLORS)]
        visible = not has_inputs or name.startswith("input/")
        settings.append(
            {
                "name": name,
                "color": color,
                "visible": visible,
                "min": math.floor(lo),
                "max": math.ceil(hi),
            }
        )
        known.add(name)
    return settings


def grown_layout(
    rows: list[str], columns: list[int], wells: list[str], seen: Mapping[str, Any]
) -> tuple[list[str], list[int], list[str]] | None:
    """Rows, columns and wells with the wells in ``seen`` added (None: no change)."""
    present = set(wells)
    missing = [w for w in seen if w not in present]
    if not missing:
        return None
    row_set, column_set = set(rows), set(columns)
    for well in missing:
        row, column = split_well(well)
        row_set.add(row)
        column_set.add(column)
    return (
        sorted(row_set, key=lambda r: (len(r), r)),
        sorted(column_set),
        list(wells) + [well_name(*split_well(w)) for w in missing],
    )
