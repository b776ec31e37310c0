# ruff: noqa: N802, N803 - the methods mirror omero-py's own names
"""THE connection calls openhcs-nb makes to OMERO, and nothing more.

Production code talks to omero-py's ``BlitzGateway`` and the Ice service
proxies it hands out, by their own method names; these protocols list exactly
the subset we call, with omero-py's signatures. The test double in
``tests/omero/omero_double.py`` implements the same protocols, so the code
under test is byte for byte the code that runs against a real server.

Every call passes a context ``ctx`` of ``{"omero.group": "-1"}`` where it
reads, so a user sees their objects in every group they belong to; OMERO's
own ACLs still decide what is visible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

#: Query across all of the user's groups (OMERO's ``omero.group=-1``).
ALL_GROUPS: dict[str, str] = {"omero.group": "-1"}

Ctx = Mapping[str, str] | None


class QueryService(Protocol):
    """``omero.api.IQuery``: HQL queries run in the user's security context."""

    def findAllByQuery(self, query: str, params: Any, _ctx: Ctx = None) -> list[Any]:
        """Model objects (with their ``join fetch`` graphs) matching ``query``."""
        ...

    def get(self, klass: str, id: int, _ctx: Ctx = None) -> Any:
        """One object by id; ``SecurityViolation`` when it exists but is hidden."""
        ...


class UpdateService(Protocol):
    """``omero.api.IUpdate``: saving new annotations, links and ROIs."""

    def saveAndReturnObject(self, obj: Any, _ctx: Ctx = None) -> Any:
        """Save one object graph and return it with ids."""
        ...

    def saveAndReturnArray(self, objs: Sequence[Any], _ctx: Ctx = None) -> list[Any]:
        """Save several object graphs in one call and return them with ids."""
        ...


class Table(Protocol):
    """``omero.grid.Table``: one OMERO.tables HDF5 table."""

    def initialize(self, cols: Sequence[Any], _ctx: Ctx = None) -> None:
        """Declare the columns (empty ``omero.grid.*Column`` values)."""
        ...

    def addData(self, cols: Sequence[Any], _ctx: Ctx = None) -> None:
        """Append rows, given as filled columns."""
        ...

    def getOriginalFile(self, _ctx: Ctx = None) -> Any:
        """The ``OriginalFile`` holding the table (to link an annotation to)."""
        ...

    def close(self, _ctx: Ctx = None) -> None:
        """Release the table on the server."""
        ...


class SharedResources(Protocol):
    """``omero.grid.SharedResources``: where new tables come from."""

    def newTable(self, repoId: int, name: str, _ctx: Ctx = None) -> Table | None:
        """A new, empty table named ``name`` (None when tables are disabled)."""
        ...


class RawPixelsStore(Protocol):
    """``omero.api.RawPixelsStore``: pixels over Ice, big-endian bytes."""

    def setPixelsId(
        self, pixelsId: int, bypassOriginalFile: bool, _ctx: Ctx = None
    ) -> None:
        """Select the Pixels to read; fails for Pixels the user cannot read."""
        ...

    def getPlane(self, z: int, c: int, t: int, _ctx: Ctx = None) -> bytes:
        """One whole plane, row-major, big-endian."""
        ...

    def getTile(
        self, z: int, c: int, t: int, x: int, y: int, w: int, h: int, _ctx: Ctx = None
    ) -> bytes:
        """A ``w`` x ``h`` region of a plane at ``(x, y)``, big-endian."""
        ...

    def close(self, _ctx: Ctx = None) -> None:
        """Release the stateful service."""
        ...


class Gateway(Protocol):
    """The ``omero.gateway.BlitzGateway`` methods we call.

    ``SERVICE_OPTS`` is the context BlitzGateway's own helpers pass
    (``getObject``, ``createFileAnnfromLocalFile``, ``deleteObjects``); we only
    call its ``setOmeroGroup(group id)`` before writing into a plate's group.
    """

    SERVICE_OPTS: Any

    def connect(self, sUuid: str | None = None) -> bool:
        """Join the session with key ``sUuid``; False when it is not valid."""
        ...

    def getEventContext(self) -> Any:
        """``omero.sys.EventContext``: user and group of the joined session."""
        ...

    def getQueryService(self) -> QueryService:
        """The query service proxy."""
        ...

    def getUpdateService(self) -> UpdateService:
        """The update service proxy."""
        ...

    def getSharedResources(self) -> SharedResources:
        """The shared resources proxy (OMERO.tables)."""
        ...

    def createRawPixelsStore(self) -> RawPixelsStore:
        """The connection's ONE RawPixelsStore (the same proxy on every call).

        The Pixels it is set to are therefore connection state; see
        :mod:`openhcs_nb.plates._omero_store`.
        """
        ...

    def getObject(self, obj_type: str, oid: int | None = None) -> Any:
        """A wrapped object visible to the user (``PlateWrapper``...), or None."""
        ...

    def deleteObjects(
        self,
        graph_spec: str,
        obj_ids: list[int],
        deleteAnns: bool = False,
        deleteChildren: bool = False,
        dryRun: bool = False,
        wait: bool = False,
    ) -> Any:
        """Delete objects (and their links) as the user."""
        ...

    def createFileAnnfromLocalFile(
        self,
        localPath: str,
        origFilePathAndName: str | None = None,
        mimetype: str | None = None,
        ns: str | None = None,
        desc: str | None = None,
    ) -> Any:
        """Upload a local file and return its ``FileAnnotationWrapper``."""
        ...

    def keepAlive(self) -> bool:
        """Refresh the session's idle timer; False when it is gone."""
        ...

    def close(self, hard: bool = True) -> None:
        """Leave the session; we always pass ``hard=False`` (never kill it)."""
        ...


#: Builds an unconnected gateway for ``(host, port)``.
GatewayFactory = Callable[[str, int], Gateway]


def group_ctx(group_id: int | None) -> dict[str, str] | None:
    """The context that writes into ``group_id`` (None: the session's group)."""
    return None if group_id is None else {"omero.group": str(group_id)}


def blitz_gateway(host: str, port: int) -> Gateway:
    """A real, unconnected ``BlitzGateway`` for ``host:port``."""
    from omero.gateway import BlitzGateway

    return BlitzGateway(host=host, port=port)


def load_omero() -> Any:
    """The ``omero`` package with its model, sys and error classes loaded.

    ``import omero`` alone leaves ``omero.sys.ParametersI``, ``omero.model.*I``
    and the server exceptions undefined; ``omero.clients`` registers them all.
    """
    import omero
    import omero.clients

    return omero


def parameters(**values: int | str | Sequence[int] | Sequence[str]) -> Any:
    """An ``omero.sys.ParametersI`` holding ints, strings and lists of either."""
    omero = load_omero()
    from omero.rtypes import rlist, rlong, rstring

    params = omero.sys.ParametersI()
    for name, value in values.items():
        if isinstance(value, bool):
            raise TypeError(f"parameter {name}: booleans are not used in our HQL")
        if isinstance(value, int):
            params.add(name, rlong(value))
        elif isinstance(value, str):
            params.add(name, rstring(value))
        elif all(isinstance(v, str) for v in value):
            params.add(name, rlist([rstring(str(v)) for v in value]))
        else:
            params.add(name, rlist([rlong(int(v)) for v in value]))
    return params
