# ruff: noqa: N803 - the methods mirror omero-py's own names
"""The double's services: IQuery, IUpdate, OMERO.tables and RawPixelsStore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import omero
import omero.clients
from omero.rtypes import rlong, rstring, unwrap

if TYPE_CHECKING:
    from omero_double import DoubleGateway, DoubleServer

ANNOTATION_LINKS = "PlateAnnotationLink"


class DoubleQuery:
    """``IQuery``: our queries, recognised by what they select."""

    def __init__(self, gw: DoubleGateway) -> None:
        self.gw = gw

    def findAllByQuery(self, query: str, params: Any, _ctx: Any = None) -> list[Any]:
        user = self.gw.current_user("findAllByQuery")
        server = self.gw.server
        values = {k: unwrap(v) for k, v in params.map.items()}
        head = query.split(" from ", 1)[1].split(maxsplit=1)[0]
        if head == "Plate":
            rec = server.plates.get(values["pid"])
            if rec is None or not self._visible(user, rec, _ctx):
                return []
            return [server.plate_graph(rec["id"], user)]
        if head == "FilesetEntry":
            return server.file_entries(values["ids"], user)
        if head == ANNOTATION_LINKS:
            return [ln for ln in server.links if unwrap(ln.parent.id) == values["pid"]]
        if head == "ExperimenterGroup":
            # Groups are system objects every user may read (as in OMERO);
            # details.permissions is the group's own permission string.
            return [
                server.group_graph(gid)
                for gid in values["ids"]
                if str(gid) in server.doc["groups"]
            ]
        if head == "Roi":
            wanted = set(values["ids"])
            return [
                r
                for r in server.saved.values()
                if isinstance(r, omero.model.RoiI) and unwrap(r.image.id) in wanted
            ]
        raise omero.ApiUsageException(message=f"the double does not know: {query}")

    def get(self, klass: str, id: int, _ctx: Any = None) -> Any:
        user = self.gw.current_user("get")
        server = self.gw.server
        if klass != "Plate" or id not in server.plates:
            raise omero.ValidationException(
                message=f"No row with the given identifier exists: [{klass}#{id}]"
            )
        rec = server.plates[id]
        if not self._visible(user, rec, _ctx):
            raise omero.SecurityViolation(
                message=f"Cannot read ome.model.screen.Plate:Id_{id}"
            )
        return server.plate_graph(id, user)

    def _visible(self, user: dict[str, Any], rec: dict[str, Any], ctx: Any) -> bool:
        server = self.gw.server
        return rec["group"] in server.groups_in(user, ctx) and server.can_read(
            user, rec["group"], rec["owner"]
        )


class DoubleUpdate:
    """``IUpdate``: assigns ids, keeps annotations, links and ROIs."""

    def __init__(self, gw: DoubleGateway) -> None:
        self.gw = gw

    def _store(self, obj: Any, ctx: Any = None) -> Any:
        server = self.gw.server
        if obj.id is None:
            obj.id = rlong(next(server.ids))
        if isinstance(obj, omero.model.PlateAnnotationLinkI):
            user = self.gw.current_user("saveAndReturnObject")
            plate = server.plates[unwrap(obj.parent.id)]
            group = server.write_group(user, ctx)  # OMERO writes into the ctx group
            if group != plate["group"]:
                raise omero.GroupSecurityViolation(
                    message=f"cannot link group {group} data to a plate of group "
                    f"{plate['group']}"
                )
            if not server.can_annotate(user, plate):
                raise omero.SecurityViolation(
                    message=f"Cannot link to ome.model.screen.Plate:Id_{plate['id']}"
                )
            if obj.child.isLoaded():
                self._store(obj.child)
            else:  # a link to a saved annotation: fetch joins return it loaded
                obj.child = server.saved[unwrap(obj.child.id)]
            server.links.append(obj)
            child = obj.child
            ns = unwrap(child.ns) if child.isLoaded() else None
            server.record(
                "link",
                plate=plate["id"],
                child=unwrap(child.id),
                ns=ns,
                cls=type(child).__name__,
                owner=user["name"],  # details.owner: who wrote it
            )
            return obj
        if isinstance(obj, omero.model.RoiI):
            self._check_roi(obj, ctx)
            for shape in obj.copyShapes():
                self._store(shape)
            server.record("roi", id=unwrap(obj.id), image=unwrap(obj.image.id))
        server.saved[unwrap(obj.id)] = obj
        return obj

    def _check_roi(self, roi: Any, ctx: Any) -> None:
        """A ROI goes into the ctx group, which must be its image's group."""
        server = self.gw.server
        user = server.user(self.gw.key or "")
        image_id = unwrap(roi.image.id)
        rec = server.images[image_id]
        group = server.write_group(user, ctx)
        if group != rec["group"]:
            raise omero.GroupSecurityViolation(
                message=f"cannot link a ROI of group {group} to image {image_id} "
                f"of group {rec['group']}"
            )
        owner = server.image_owner.get(image_id, 0)
        if not server.can_annotate(user, {"group": group, "owner": owner}):
            raise omero.SecurityViolation(
                message=f"Cannot link to ome.model.core.Image:Id_{image_id}"
            )

    def saveAndReturnObject(self, obj: Any, _ctx: Any = None) -> Any:
        self.gw.current_user("saveAndReturnObject")
        with self.gw.server.lock:
            return self._store(obj, _ctx)

    def saveAndReturnArray(self, objs: list[Any], _ctx: Any = None) -> list[Any]:
        self.gw.current_user("saveAndReturnArray")
        with self.gw.server.lock:
            return [self._store(o, _ctx) for o in objs]


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
    """``RawPixelsStore``: planes from ground truth, as big-endian bytes.

    A gateway hands out ONE of these for its whole connection, as
    ``BlitzGateway.createRawPixelsStore`` does, so the pixels id set here is
    seen by every reader of that connection. ``close()`` leaves it unset, like
    the fresh service omero-py's proxy wrapper creates on the next call.
    """

    def __init__(self, gw: DoubleGateway) -> None:
        self.gw = gw
        self.data: np.ndarray | None = None
        self.pixels_id: int | None = None
        self.sets = 0  # setPixelsId calls that succeeded

    def setPixelsId(self, pixelsId: int, bypassOriginalFile: bool, _ctx: Any = None):
        user = self.gw.current_user("setPixelsId")
        server = self.gw.server
        if _ctx is not None and str(_ctx.get("omero.group")) == "-1":
            raise omero.SecurityViolation(message="stateful services need a group")
        self.data, self.pixels_id = None, None
        groups = server.groups_in(user, _ctx)
        for image_id, rec in server.images.items():
            if rec["pixels"]["id"] != pixelsId:
                continue
            owner = server.image_owner.get(image_id)
            if rec["group"] in groups and server.can_read(user, rec["group"], owner):
                self.data = np.load(server.root / rec["truth"])
                self.pixels_id = pixelsId
                self.sets += 1
                return
            raise omero.SecurityViolation(
                message=f"Cannot read ome.model.core.Pixels:Id_{pixelsId}"
            )
        raise omero.ValidationException(
            message=f"No row with the given identifier exists: [Pixels#{pixelsId}]"
        )

    def _loaded(self) -> np.ndarray:
        if self.data is None:
            raise omero.ApiUsageException(message="setPixelsId has not been called")
        return self.data

    def getPlane(self, z: int, c: int, t: int, _ctx: Any = None) -> bytes:
        self.gw.current_user("getPlane")
        self.gw.server.plane_calls += 1
        plane = self._loaded()[t, c, z]
        return plane.astype(plane.dtype.newbyteorder(">")).tobytes()

    def getTile(self, z, c, t, x, y, w, h, _ctx: Any = None) -> bytes:
        self.gw.current_user("getTile")
        tile = self._loaded()[t, c, z, y : y + h, x : x + w]
        return tile.astype(tile.dtype.newbyteorder(">")).tobytes()

    def close(self, _ctx: Any = None) -> None:
        self.data, self.pixels_id = None, None
