# ruff: noqa: N803 - the methods mirror omero-py's own names
"""The double's OMERO.tables table and RawPixelsStore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import omero
import omero.clients
from omero.rtypes import rstring, unwrap

if TYPE_CHECKING:
    from omero_double import DoubleGateway, DoubleServer


class DoubleTable:
    """``omero.grid.Table``: keeps the real column objects it is given."""

    def __init__(self, server: DoubleServer, name: str) -> None:
        self.server = server
        self.name = name
        self.columns: list[Any] = []
        self.file = omero.model.OriginalFileI(next(server.ids), True)
        self.file.name = rstring(name)
        self.file.mimetype = rstring("OMERO.tables")
        self.closed = False

    def initialize(self, cols: list[Any], _ctx: Any = None) -> None:
        self.columns = [
            type(c)(
                c.name, c.description, *([c.size] if hasattr(c, "size") else []), []
            )
            for c in cols
        ]

    def addData(self, cols: list[Any], _ctx: Any = None) -> None:
        for mine, theirs in zip(self.columns, cols, strict=True):
            assert type(mine) is type(theirs) and mine.name == theirs.name
            mine.values.extend(theirs.values)

    def getOriginalFile(self, _ctx: Any = None) -> Any:
        return self.file

    def close(self, _ctx: Any = None) -> None:
        self.closed = True
        self.server.tables[unwrap(self.file.id)] = self
        rows = len(self.columns[0].values) if self.columns else 0
        self.server.record(
            "table",
            file=unwrap(self.file.id),
            name=self.name,
            columns=[(type(c).__name__, c.name) for c in self.columns],
            rows=rows,
        )


class DoubleShared:
    def __init__(self, gw: DoubleGateway) -> None:
        self.gw = gw

    def newTable(self, repoId: int, name: str, _ctx: Any = None) -> DoubleTable:
        self.gw.current_user("newTable")
        return DoubleTable(self.gw.server, name)


class DoublePixels:
    """``RawPixelsStore``: planes from ground truth, as big-endian bytes."""

    def __init__(self, gw: DoubleGateway) -> None:
        self.gw = gw
        self.data: np.ndarray | None = None

    def setPixelsId(self, pixelsId: int, bypassOriginalFile: bool, _ctx: Any = None):
        user = self.gw.current_user("setPixelsId")
        if _ctx is not None and _ctx.get("omero.group") == "-1":
            raise omero.SecurityViolation(message="stateful services need a group")
        for rec in self.gw.server.images.values():
            if rec["pixels"]["id"] == pixelsId:
                if not self.gw.server.can_read(user, rec["group"]):
                    break
                self.data = np.load(self.gw.server.root / rec["truth"])
                return
        raise omero.ValidationException(message=f"Cannot read pixels id={pixelsId}")

    def getPlane(self, z: int, c: int, t: int, _ctx: Any = None) -> bytes:
        self.gw.current_user("getPlane")
        self.gw.server.plane_calls += 1
        plane = self.data[t, c, z]
        return plane.astype(plane.dtype.newbyteorder(">")).tobytes()

    def getTile(self, z, c, t, x, y, w, h, _ctx: Any = None) -> bytes:
        self.gw.current_user("getTile")
        tile = self.data[t, c, z, y : y + h, x : x + w]
        return tile.astype(tile.dtype.newbyteorder(">")).tobytes()

    def close(self, _ctx: Any = None) -> None:
        self.data = None
