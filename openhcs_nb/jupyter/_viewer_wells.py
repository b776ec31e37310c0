"""The plate viewer's per-well state on the wire: deltas, and a snapshot on "ready".

A 384-well plate's ``status``, ``values`` and ``errors`` are tens of KB;
syncing the whole dicts as widget state re-sent all of it on every batch. The
page gets custom messages instead:

- ``{"type": "wells", "full": false, "status": {...}, "values": {...},
  "errors": {...}}`` after a batch, holding only the wells whose entry is new
  or differs (an empty dict for a key that did not change);
- ``{"type": "wells", "full": true, ...}`` with everything, whenever a view
  says ``{"type": "ready"}``: a view opened (or re-rendered) later has missed
  the earlier deltas, and custom messages are not replayed;
- wells are never dropped from these dicts during a run; if one ever is, a
  full snapshot goes out instead of a delta, so the page never keeps a stale
  well.

The page merges a delta into its copy and replaces its copy with a snapshot
(``static/sources.js``, ``modelSource``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WELLS = "wells"
READY = "ready"
KEYS = ("status", "values", "errors")

WellState = Mapping[str, Mapping[str, Any]]


def snapshot(state: WellState) -> dict[str, Any]:
    """Everything, for a view that has just said it is ready."""
    return {"type": WELLS, "full": True, **{k: dict(state[k]) for k in KEYS}}


def delta(before: WellState, after: WellState) -> dict[str, Any] | None:
    """The wells that changed from ``before`` to ``after`` (None: nothing did)."""
    changed: dict[str, dict[str, Any]] = {}
    for key in KEYS:
        old, new = before[key], after[key]
        if any(well not in new for well in old):
            return snapshot(after)
        changed[key] = {
            well: value
            for well, value in new.items()
            if well not in old or old[well] != value
        }
    if not any(changed.values()):
        return None
    return {"type": WELLS, "full": False, **changed}
