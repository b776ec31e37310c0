# ruff: noqa: N803, N806 - the methods mirror omero-py's own names
"""A THIN test double of the OMERO connection calls listed in
``openhcs_nb/omero/gateway.py`` -- and nothing else.

It stands in for the *server*: it answers our four HQL queries with real
``omero.model`` graphs built from a fixture description (``omero_fixture.py``),
applies a simple ACL (a user sees objects of their groups; a read-only group
refuses annotations by non-owners), raises the exceptions OMERO raises
(``SecurityViolation``, ``ValidationException``, ``Ice.ObjectNotExistException``
for a dead session), keeps what is saved, and serves Ice pixels as big-endian
bytes from ground-truth arrays that never went through the code under test.

It does not parse HQL: it recognises our queries by the entity they select.
An unknown query raises, so a new query in the code needs a double update and
a real-server check (``pytest -m omero``).

Used in-process by the tests, and by a real server process through the test
seam (``[omero] test_double = ".../double.json"``, see ``_test_seam.py``).
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
from pathlib import Path
from typing import Any

import omero
import omero.clients
import omero.gateway
import omero.grid
from omero.rtypes import rlong, rstring, unwrap

if str(Path(__file__).parent) not in sys.path:  # loaded by file path via the seam
    sys.path.insert(0, str(Path(__file__).parent))

from omero_double_model import ModelRows
from omero_double_services import DoublePixels, DoubleShared, DoubleTable

ANNOTATION_LINKS = "PlateAnnotationLink"


class DoubleServer(ModelRows):
    """The state a server would hold: model rows, sessions, saved objects."""

    def __init__(self, description: Path) -> None:
        self.path = Path(description)
        self.root = self.path.parent
        self.doc = json.loads(self.path.read_text(encoding="utf-8"))
        self.sessions: dict[str, str | None] = dict(self.doc["sessions"])
        self.images = {i["id"]: i for i in self.doc["images"]}
        self.plates = {p["id"]: p for p in self.doc["plates"]}
        self.filesets = {f["id"]: f for f in self.doc["filesets"]}
        self.saved: dict[int, Any] = {}  # id -> saved annotation / ROI / file
        self.links: list[Any] = []
        self.tables: dict[int, DoubleTable] = {}
        self.ids = itertools.count(9_000_001)
        self.lock = threading.Lock()
        self.calls: list[str] = []
        self.closes: list[bool] = []
        self.plane_calls = 0
        #: call name -> how many of the next such calls fail with a lost connection
        self.fail_next: dict[str, int] = {}
        log = self.doc.get("writes_log")
        self.log_path = self.root / log if log else None

    # -- identity and ACL ---------------------------------------------------------

    def user(self, key: str) -> dict[str, Any]:
        name = self.sessions.get(key)
        if name is None:
            raise omero.RemovedSessionException(message=f"session {key[:4]}... gone")
        return {"name": name, **self.doc["users"][name]}

    def expire(self, key: str) -> None:
        """Make ``key`` invalid from now on (tests of long runs)."""
        self.sessions[key] = None

    def record(self, kind: str, **fields: Any) -> None:
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"kind": kind, **fields}, default=str) + "\n")


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
            if rec is None or not server.can_read(user, rec["group"]):
                return []
            return [server.plate_graph(rec["id"], user)]
        if head == "FilesetEntry":
            return server.file_entries(values["ids"], user)
        if head == ANNOTATION_LINKS:
            return [ln for ln in server.links if unwrap(ln.parent.id) == values["pid"]]
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
        if not server.can_read(user, rec["group"]):
            raise omero.SecurityViolation(
                message=f"Cannot read ome.model.screen.Plate:Id_{id}"
            )
        return server.plate_graph(id, user)


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
            group = (ctx or {}).get("omero.group", str(user["groups"][0]))
            if group != str(plate["group"]):  # OMERO writes into the ctx group
                raise omero.SecurityViolation(
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
            )
            return obj
        if isinstance(obj, omero.model.RoiI):
            for shape in obj.copyShapes():
                self._store(shape)
            server.record("roi", id=unwrap(obj.id), image=unwrap(obj.image.id))
        server.saved[unwrap(obj.id)] = obj
        return obj

    def saveAndReturnObject(self, obj: Any, _ctx: Any = None) -> Any:
        self.gw.current_user("saveAndReturnObject")
        with self.gw.server.lock:
            return self._store(obj, _ctx)

    def saveAndReturnArray(self, objs: list[Any], _ctx: Any = None) -> list[Any]:
        self.gw.current_user("saveAndReturnArray")
        with self.gw.server.lock:
            return [self._store(o) for o in objs]


class ServiceOpts(dict):
    """``omero.gateway.ServiceOptsDict``: only the group setter we use."""

    def setOmeroGroup(self, group: str) -> None:
        self["omero.group"] = str(group)


class DoubleGateway:
    """The ``BlitzGateway`` calls of ``gateway.Gateway``, answered by the double."""

    def __init__(
        self,
        server: DoubleServer,
        host: str,
        port: int,
        username: str | None = None,
        passwd: str | None = None,
    ) -> None:
        self.server = server
        self.host, self.port = host, port
        self.key: str | None = None
        self._login = (username, passwd)
        self.SERVICE_OPTS = ServiceOpts()

    def current_user(self, call: str) -> dict[str, Any]:
        self.server.calls.append(call)
        if self.server.fail_next.get(call, 0) > 0:
            import Ice

            self.server.fail_next[call] -= 1
            raise Ice.ConnectionLostException()
        if self.key is None:
            raise omero.ClientError("not connected")
        try:
            return self.server.user(self.key)
        except omero.RemovedSessionException:
            import Ice

            raise Ice.ObjectNotExistException() from None

    def connect(self, sUuid: str | None = None) -> bool:
        self.server.calls.append("connect")
        user, password = self._login
        if sUuid is None and user is not None:
            if self.server.doc.get("passwords", {}).get(user) != password:
                return False
            sUuid = f"{user}-login-{next(self.server.ids)}"
            self.server.sessions[sUuid] = user
        if not sUuid or self.server.sessions.get(sUuid) is None:
            return False
        self.key = sUuid
        return True

    def getEventContext(self) -> Any:
        user = self.current_user("getEventContext")
        group = user["groups"][0]
        return omero.sys.EventContext(
            userId=user["id"],
            userName=user["name"],
            groupId=group,
            groupName=self.server.doc["groups"][str(group)]["name"],
            sessionUuid=self.key,
            memberOfGroups=user["groups"],
        )

    def getQueryService(self) -> DoubleQuery:
        return DoubleQuery(self)

    def getUpdateService(self) -> DoubleUpdate:
        return DoubleUpdate(self)

    def getSharedResources(self) -> DoubleShared:
        return DoubleShared(self)

    def createRawPixelsStore(self) -> DoublePixels:
        self.current_user("createRawPixelsStore")
        return DoublePixels(self)

    def getObject(self, obj_type: str, oid: int | None = None) -> Any:
        user = self.current_user("getObject")
        rec = self.server.plates.get(oid) if obj_type == "Plate" else None
        if rec is None or not self.server.can_read(user, rec["group"]):
            return None
        return omero.gateway.PlateWrapper(self, self.server.plate_graph(oid, user))

    def deleteObjects(
        self,
        graph_spec,
        obj_ids,
        deleteAnns=False,
        deleteChildren=False,
        dryRun=False,
        wait=False,
    ) -> None:
        self.current_user("deleteObjects")
        doomed = set(obj_ids)
        with self.server.lock:
            self.server.links = [
                ln for ln in self.server.links if unwrap(ln.child.id) not in doomed
            ]
            for oid in doomed:
                self.server.saved.pop(oid, None)
        self.server.record("delete", spec=graph_spec, ids=sorted(doomed))

    def createFileAnnfromLocalFile(
        self, localPath, origFilePathAndName=None, mimetype=None, ns=None, desc=None
    ) -> Any:
        self.current_user("createFileAnnfromLocalFile")
        name = Path(origFilePathAndName or localPath).name
        original = omero.model.OriginalFileI(next(self.server.ids), True)
        original.name, original.mimetype = rstring(name), rstring(mimetype or "")
        original.size = rlong(Path(localPath).stat().st_size)
        self.server.saved[unwrap(original.id)] = Path(localPath).read_bytes()
        ann = omero.model.FileAnnotationI()
        ann.file = original
        ann.ns, ann.description = rstring(ns or ""), rstring(desc or "")
        ann = DoubleUpdate(self).saveAndReturnObject(ann)
        return omero.gateway.FileAnnotationWrapper(self, ann)

    def keepAlive(self) -> bool:
        self.server.calls.append("keepAlive")
        return self.key is not None and self.server.sessions.get(self.key) is not None

    def close(self, hard: bool = True) -> None:
        self.server.closes.append(hard)
        self.key = None


def factory_for(server: DoubleServer) -> Any:
    """A gateway factory (what ``join_session(factory=...)`` takes) on ``server``."""

    def make(host: str, port: int) -> DoubleGateway:
        return DoubleGateway(server, host, port)

    make.server = server  # type: ignore[attr-defined] - tests inspect the state
    return make


_SERVERS: dict[str, DoubleServer] = {}


def gateway_factory(description: Path) -> Any:
    """The factory the test seam calls: one server state per description per
    process, so a server process's sessions all see the same "database"."""
    key = str(Path(description).resolve())
    if key not in _SERVERS:
        _SERVERS[key] = DoubleServer(Path(description))
    return factory_for(_SERVERS[key])
