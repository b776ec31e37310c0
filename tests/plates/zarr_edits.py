"""Editing OME-Zarr metadata in place, for tests that plant bad plates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def edit_ome(group: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Apply ``change`` to the OME attributes of a v2 or v3 group, in place."""
    v3 = group / "zarr.json"
    path = v3 if v3.is_file() else group / ".zattrs"
    doc = json.loads(path.read_text())
    attrs = doc["attributes"] if v3.is_file() else doc
    change(attrs.get("ome", attrs))
    path.write_text(json.dumps(doc))
