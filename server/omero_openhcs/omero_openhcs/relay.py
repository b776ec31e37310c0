"""What the results page's plate viewer is fed, read from a followed execution.

The page polls ``state.json`` with the ``version`` it has; the relay answers
the viewer's state keys (see the header of ``openhcs_nb/jupyter/static/
plate_viewer.js``) from the client's ``Execution`` handle, which follows the
execution server's event stream and backfills what it missed. Images of one
well travel as one binary body (the planes ``pack_planes`` lays out) with
their description (and suggested channel colours and contrast, the
notebook's own choice) in a header, never as base64.

Rules:

- Only numbers leave as measurement values (NaN becomes null); a failed
  well carries its one-line error, never a server traceback.
- ``version`` counts the wells reported plus the run's state, so an
  unchanged run answers ``{"changed": false}`` and the page redraws nothing.
- ``ended`` tells the page to stop polling: a run the server reports done
  has ended only once the handle holds all its wells (a handle attached after
  the run finished still backfills them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openhcs_nb.jupyter._images import pack_planes
from openhcs_nb.jupyter._viewer_state import channel_settings, clean_summary

#: States after which nothing more will change.
ENDED = frozenset({"done", "failed", "cancelled", "server lost"})


def layout_state(info: Any, execution: Any) -> dict[str, Any]:
    """Plate layout keys of the viewer from ``Connection.plate_info`` (or None)."""
    wells = list(getattr(execution, "requested_wells", None) or [])
    if info is None:
        rows = sorted({w[0] for w in wells})
        columns = sorted({int(w[1:]) for w in wells})
        return {
            "plate_name": str(execution.plate),
            "rows": rows,
            "columns": columns,
            "wells": wells,
            "fields": 1,
        }
    return {
        "plate_name": info.name,
        "rows": list(info.rows),
        "columns": list(info.columns),
        "wells": list(info.wells),
        "fields": max(1, int(info.fields)),
    }


def version_of(execution: Any) -> str:
    """Changes whenever a well is reported or the run's state changes."""
    done, failed, total = execution.progress
    running = len(execution.running_wells)
    return f"{execution.state}:{done}:{failed}:{running}:{total}"


def run_state(execution: Any) -> dict[str, Any]:
    """Status, values and errors of every well, and the run's own state."""
    wells = execution.wells
    status: dict[str, str] = {}
    for well in getattr(execution, "requested_wells", None) or []:
        try:
            status[well] = execution.well_state(well)
        except KeyError:
            status[well] = "queued"
    for well in execution.running_wells:
        status.setdefault(well, "running")
        if status[well] == "queued":
            status[well] = "running"
    values: dict[str, dict[str, float | None]] = {}
    errors: dict[str, str] = {}
    for well, event in wells.items():
        status[well] = event.status
        values[well] = clean_summary(event.summary or {})
        if event.error:
            errors[well] = str(event.error).splitlines()[0]
    measurements = sorted({m for v in values.values() for m in v})
    done, failed, total = execution.progress
    state = str(execution.state)
    error = execution.error if state in ENDED else None
    return {
        "status": status,
        "values": values,
        "errors": errors,
        "measurements": ["status", *measurements],
        "run_state": f"{state}: {error.splitlines()[0]}" if error else state,
        "progress": {"done": done, "failed": failed, "total": total},
        "ended": state in ENDED and (state != "done" or done + failed >= total),
    }


def well_images(execution: Any, well: str) -> tuple[bytes, dict[str, Any]]:
    """The preview planes of ``well`` packed for the viewer (empty when none).

    Raises
    ------
    KeyError
        No result for ``well`` has arrived yet.
    """
    images: Mapping[str, Any] = execution.previews(well)
    if not images:
        return b"", {"well": well, "field": 0, "planes": [], "channels": []}
    data, meta = pack_planes(images)
    channels = channel_settings([], data, meta)
    return data, {"well": well, "field": 0, "serial": 0, **meta, "channels": channels}
