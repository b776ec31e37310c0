# ruff: noqa: N803, N806 - the methods mirror omero-py's own names
"""A THIN test double of the OMERO connection calls listed in
``openhcs_nb/omero/gateway.py`` -- and nothing else.

It stands in for the *server*: it answers our five HQL queries (plate, files,
links, ROIs, groups) with real ``omero.model`` graphs built from a fixture
description (``omero_fixture.py``),
applies OMERO's ACL as ``omero.model.PermissionsI`` reads the group's
permission string (members see their groups' data, only their own in a private
group; read-annotate and read-write groups let members annotate each other's
data, read-only ones do not), honours the group context (``omero.group`` in a
call's ``ctx`` or the gateway's ``SERVICE_OPTS``: ``-1`` for all groups, unset
for the session's default group), hands out ONE RawPixelsStore per connection
as ``BlitzGateway`` does (so its pixels id is connection state), raises the exceptions OMERO raises
(``SecurityViolation``, ``ValidationException``, ``Ice.ObjectNotExistException``
for a dead session), keeps what is saved, and serves Ice pixels as big-endian
bytes from ground-truth arrays that never went through the code under test.

It does not parse HQL: it recognises our queries by the entity they select.
An unknown query raises, so a new query in the code needs a double update and
a real-server check (``pytest -m omero``).

Tests inject it where production takes omero-py's gateway: ``join_session(...,
factory=DoubleFactory(...))``, ``Server(config, omero_gateway=...)`` and, for
real server processes, ``tests/omero/cli_with_double.py``; a hub's password
logins take :class:`LoginFactory` (``OmeroAuthenticator.gateway_factory``). A
:class:`DoubleFactory` pickles by reference (its description path), so plate
handles carry it into worker processes; the product has no way to load it.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import omero
import omero.clients
import omero.gateway
import omero.grid
from omero.rtypes import rlong, rstring, unwrap

if str(Path(__file__).parent) not in sys.path:  # the sibling modules below
    sys.path.insert(0, str(Path(__file__).parent))

from omero_double_model import ModelRows
from omero_double_services import (
    DoublePixels,
    DoubleQuery,
    DoubleShared,
    DoubleTable,
    DoubleUpdate,
)


class DoubleServer(ModelRows):
    """The state a server would hold: model rows, sessions, saved objects."""

    def __init__(self, description: Path) -> None:
        self.path = Path(description)
        self.root = self.path.parent
        self.doc = json.loads(self.path.read_text(encoding="utf-8"))
        self.sessions: dict[str, str | None] = dict(self.doc["sessions"])
        killed = self.doc.get("killed_sessions")
        self.killed_path = self.root / killed if killed else None
        logins = self.doc.get("login_sessions")
        self.logins_path = self.root / logins if logins else None
        self.images = {i["id"]: i for i in self.doc["images"]}
        self.plates = {p["id"]: p for p in self.doc["plates"]}
        self.filesets = {f["id"]: f for f in self.doc["filesets"]}
        self.image_owner = {
            sample["image"]: plate["owner"]
            for plate in self.doc["plates"]
            for well in plate["wells"]
            for sample in well["samples"]
        }
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
        name = self.session_user(key)
        if name is None:
            raise omero.RemovedSessionException(message=f"session {key[:4]}... gone")
        return {"name": name, **self.doc["users"][name]}

    def session_user(self, key: str | None) -> str | None:
        """The user of a live session key; None if unknown, expired or killed.

        Keys listed in the description's ``killed_sessions`` file (one per
        line) are gone, as when their user logs out of OMERO.web: another
        process (a test) can end a session a server process has joined.
        """
        if key is None:
            return None
        killed = self.killed_path
        if killed is not None and killed.exists() and key in killed.read_text().split():
            return None
        if key in self.sessions or self.logins_path is None:
            return self.sessions.get(key)
        if self.logins_path.exists():  # made by a login in another process
            for line in self.logins_path.read_text(encoding="utf-8").splitlines():
                made, _, name = line.partition(" ")
                if made == key:
                    return name
        return None

    def create_session(self, user: str) -> str:
        """A new session of ``user`` (a password login), as OMERO keys them.

        With ``login_sessions`` in the description it is also appended to that
        file (``<key> <user>`` lines), so other processes built from the same
        description know it: a hub logs in, an execution server joins.
        """
        key = str(uuid.uuid4())
        self.sessions[key] = user
        if self.logins_path is not None:
            with self.logins_path.open("a", encoding="utf-8") as handle:
                handle.write(f"{key} {user}\n")
        return key

    def expire(self, key: str) -> None:
        """Make ``key`` invalid from now on (tests of long runs)."""
        self.sessions[key] = None

    def groups_in(self, user: dict[str, Any], ctx: Any) -> list[int]:
        """The groups a call with ``ctx`` sees: ``-1`` all, unset the default.

        Raises ``SecurityViolation`` for a group the user is not a member of.
        """
        group = (ctx or {}).get("omero.group")
        if group is None:
            return [user["groups"][0]]
        if str(group) == "-1":
            return list(user["groups"])
        if int(group) not in user["groups"]:
            raise omero.SecurityViolation(
                message=f"user {user['name']} is not a member of group {group}"
            )
        return [int(group)]

    def write_group(self, user: dict[str, Any], ctx: Any) -> int:
        """The one group a write with ``ctx`` goes into (never ``-1``)."""
        groups = self.groups_in(user, ctx)
        if len(groups) != 1 or str((ctx or {}).get("omero.group")) == "-1":
            raise omero.SecurityViolation(message="cannot write with omero.group=-1")
        return groups[0]

    def record(self, kind: str, **fields: Any) -> None:
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"kind": kind, **fields}, default=str) + "\n")


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
        self.SERVICE_OPTS = omero.gateway.ServiceOptsDict()
        self._raw_pixels: DoublePixels | None = None

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
            sUuid = self.server.create_session(user)
        if not sUuid or self.server.session_user(sUuid) is None:
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
        """The connection's one store, as ``BlitzGateway._proxies['rawpixels']``."""
        self.current_user("createRawPixelsStore")
        if self._raw_pixels is None:
            self._raw_pixels = DoublePixels(self)
        return self._raw_pixels

    def getObject(self, obj_type: str, oid: int | None = None) -> Any:
        """Like ``BlitzGateway.getObject``: queries with ``SERVICE_OPTS``."""
        user = self.current_user("getObject")
        rec = self.server.plates.get(oid) if obj_type == "Plate" else None
        if rec is None or not DoubleQuery(self)._visible(user, rec, self.SERVICE_OPTS):
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
        return self.server.session_user(self.key) is not None

    def close(self, hard: bool = True) -> None:
        """``hard`` kills the session (``killSession``), as BlitzGateway does."""
        self.server.closes.append(hard)
        if hard and self.key is not None:
            self.server.expire(self.key)
        self.key = None
        self._raw_pixels = None  # BlitzGateway drops its proxies (NoProxies)


_SERVERS: dict[tuple[str, str], DoubleServer] = {}
_SERVERS_LOCK = threading.Lock()
_INSTANCES = itertools.count(1)


def server_for(description: Path, instance: str = "") -> DoubleServer:
    """The double's state for ``(description, instance)`` in this process.

    Every gateway of one process shares it, as sessions share a database; a
    worker process that unpickles a factory builds its own from the file.
    """
    key = (str(Path(description).resolve()), instance)
    with _SERVERS_LOCK:
        if key not in _SERVERS:
            _SERVERS[key] = DoubleServer(Path(description))
        return _SERVERS[key]


@dataclass(frozen=True)
class DoubleFactory:
    """The double's gateway factory: what production gets from omero-py.

    A module-level frozen dataclass so that it pickles by reference inside a
    plate handle (workers need ``tests/omero`` on ``sys.path``) and hashes
    (handles are ``lru_cache`` keys).
    """

    description: Path
    instance: str = ""

    def __call__(self, host: str, port: int) -> DoubleGateway:
        return DoubleGateway(self.server, host, port)

    @property
    def server(self) -> DoubleServer:
        """The state the gateways of this factory share (tests inspect it)."""
        return server_for(self.description, self.instance)


@dataclass(frozen=True)
class LoginFactory:
    """``BlitzGateway(username, passwd, host=, port=, secure=)`` on the double.

    What a password login (``OmeroAuthenticator``, ``session.login``) builds:
    ``connect()`` checks the description's ``passwords`` and makes a session.
    """

    description: Path
    instance: str = ""

    def __call__(
        self,
        username: str | None,
        passwd: str | None,
        host: str = "double",
        port: int = 4064,
        secure: bool = True,
    ) -> DoubleGateway:
        return DoubleGateway(
            server_for(self.description, self.instance), host, port, username, passwd
        )


def factory_for(server: DoubleServer) -> DoubleFactory:
    """A picklable factory on ``server`` (an in-process test's fresh state)."""
    instance = f"test-{next(_INSTANCES)}"
    with _SERVERS_LOCK:
        _SERVERS[(str(server.path.resolve()), instance)] = server
    return DoubleFactory(server.path, instance)
