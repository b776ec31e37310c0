"""Shared helpers of the PlateViewer tests: a layout, flushing, what was sent."""

from __future__ import annotations

import json
import time
from typing import Any

from openhcs_nb.jupyter.viewer import STATIC, PlateViewer
from openhcs_nb.plates.model import PlateLayout

SMALL = "small.ome.zarr"
JS = STATIC / "plate_viewer.js"


def layout(rows: str = "AB", columns: int = 3, fields: int = 2) -> PlateLayout:
    wells = tuple(f"{r}{c:02d}" for r in rows for c in range(1, columns + 1))
    return PlateLayout(
        name="test plate",
        rows=tuple(rows),
        columns=tuple(range(1, columns + 1)),
        wells=wells,
        fields=fields,
        channels=("DAPI", "GFP"),
        z=1,
        t=1,
        dtype="uint16",
        shape=(32, 32),
    )


def flush_until(viewer: PlateViewer, condition, timeout: float = 30.0) -> None:
    """Flush (waiting for any flush in progress) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    viewer.flush()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
        viewer.flush()


def loaded(viewer: PlateViewer, well: str | None = None, field: int | None = None):
    """Whether the viewer shows (well, field) for real, not a "loading" line."""
    meta = viewer.image_meta
    return (
        (well is None or meta.get("well") == well)
        and (field is None or meta.get("field") == field)
        and not viewer.message.startswith("loading")
    )


class Wire:
    """What a widget sends its page: each comm message as the kernel encodes it."""

    def __init__(self, viewer: PlateViewer) -> None:
        self.messages: list[dict[str, Any]] = []
        self.sizes: list[int] = []
        send = viewer.comm.send

        def record(data: Any = None, metadata: Any = None, buffers: Any = None):
            self.messages.append(data)
            text = json.dumps(data, allow_nan=False, separators=(",", ":"))
            self.sizes.append(len(text.encode()) + sum(len(b) for b in buffers or ()))
            return send(data=data, metadata=metadata, buffers=buffers)

        viewer.comm.send = record

    def wells(self) -> list[dict[str, Any]]:
        """The per-well messages (deltas and snapshots), in order."""
        return [
            m["content"]
            for m in self.messages
            if m.get("method") == "custom" and m["content"].get("type") == "wells"
        ]

    def clear(self) -> None:
        self.messages.clear()
        self.sizes.clear()
