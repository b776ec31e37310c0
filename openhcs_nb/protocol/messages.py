"""Commands (client -> server) and replies (server -> client).

Every message is a frozen msgspec Struct tagged by its class name in the
``type`` key and carries ``v``, the protocol version. A command carries ``rid``,
a request id the client picks; the reply to it echoes ``rid``, so a DEALER can
match replies that come back out of order. ``ClientMessage`` and
``ServerReply`` are the two unions, each decoded by one typed decoder.

Each command has exactly one success reply (named in its docstring) and may
instead get an :class:`ErrorReply`. See ``docs/protocol.md`` for the full spec
and :mod:`openhcs_nb.protocol.records` for the schema-evolution rules.
"""

from __future__ import annotations

import msgspec

from openhcs_nb.protocol.events import Event
from openhcs_nb.protocol.preset_messages import PresetAnswer, PresetCommand
from openhcs_nb.protocol.records import (
    PROTOCOL_VERSION,
    ArrayRef,
    ExecutionInfo,
    FunctionInfo,
    PlateInfoWire,
    SubmitOptions,
)


class _Message(msgspec.Struct, frozen=True, tag=True, tag_field="type", kw_only=True):
    """Fields every command and reply carries; the tag is the class name."""

    rid: int
    v: int = PROTOCOL_VERSION


# --- client -> server -------------------------------------------------------


class Hello(_Message, kw_only=True):
    """Handshake, first on every connection; reply: :class:`HelloReply`.

    ``client`` names the client and its version (``"openhcs-nb/0.1.0"``).
    ``omero_session`` is the OMERO session key the identity layer joins.
    """

    client: str
    omero_session: str | None = None


class ListPlates(_Message, kw_only=True):
    """Plates this user may read; reply: :class:`PlatesReply`."""


class PlateInfo(_Message, kw_only=True):
    """Layout of one plate; reply: :class:`PlateInfoReply`."""

    plate: str


class Submit(_Message, kw_only=True):
    """Run a pipeline on a plate (all wells if ``wells`` is None).

    Reply: :class:`Submitted`.
    """

    pipeline_code: str
    plate: str
    wells: list[str] | None = None
    options: SubmitOptions = SubmitOptions()


class Preview(_Message, kw_only=True):
    """Run steps ``[0, upto)`` (all if None) on one site of one well.

    Reply: :class:`PreviewReply`; images are at most ``max_size`` pixels a side.
    """

    pipeline_code: str
    plate: str
    well: str
    upto: int | None = None
    site: int = 0
    max_size: int = 512


class Status(_Message, kw_only=True):
    """One execution's record; reply: :class:`StatusReply`."""

    execution_id: str


class ListExecutions(_Message, kw_only=True):
    """The user's executions, newest first; reply: :class:`ExecutionsReply`."""

    include_finished: bool = True


class Cancel(_Message, kw_only=True):
    """Stop queued wells and interrupt running ones; reply: :class:`CancelReply`."""

    execution_id: str


class Fetch(_Message, kw_only=True):
    """Stored events with ``seq > since_seq``, oldest first; reply: :class:`FetchReply`.

    ``full_resolution`` asks for full-size images in ``WellDone.previews``,
    of field ``site`` (the stored previews are of field 0).
    """

    execution_id: str
    since_seq: int = 0
    limit: int = 1000
    full_resolution: bool = False
    site: int = 0


class Pyramid(_Message, kw_only=True):
    """Plane names and level sizes of one field; reply: :class:`PyramidReply`.

    Names a finished well of the caller's ``execution_id`` (raw channels and
    labels), or else a ``plate`` the caller may read (raw channels only).
    """

    well: str
    site: int = 0
    execution_id: str | None = None
    plate: str | None = None


class Tile(_Message, kw_only=True):
    """One tile of one plane at one pyramid level; reply: :class:`TileReply`.

    The tile is row ``ty``, column ``tx`` of the ``size`` x ``size`` grid over
    the level (edge tiles are smaller), so a viewer fetches only what it shows.
    """

    well: str
    name: str
    site: int = 0
    level: int = 0
    ty: int = 0
    tx: int = 0
    size: int = 256
    execution_id: str | None = None
    plate: str | None = None


class ServerStatus(_Message, kw_only=True):
    """How busy the server is, in totals only; reply: :class:`ServerStatusReply`.

    Cheap by design: a client holding several servers asks each before it
    picks one for a submit or a preview.
    """


class WellObjects(_Message, kw_only=True):
    """One finished well's object rows (one field); reply: :class:`WellObjectsReply`.

    Measurements, never pixels: the rows the well's worker wrote to the
    objects table of the caller's ``execution_id``, of field ``site``, of one
    ``object_set`` or of all of them (None).
    """

    execution_id: str
    well: str
    site: int = 0
    object_set: str | None = None


ClientMessage = (
    Hello
    | ListPlates
    | PlateInfo
    | Submit
    | Preview
    | Status
    | ListExecutions
    | Cancel
    | Fetch
    | Pyramid
    | Tile
    | ServerStatus
    | WellObjects
    | PresetCommand
)


# --- server -> client -------------------------------------------------------


class HelloReply(_Message, kw_only=True):
    """The server's identity, catalogue and capacity; ``user`` as authenticated.

    ``user`` is the CurveZMQ key's name (``local`` without keys); ``omero_user``
    is the OMERO user whose session this connection joined, if any.
    """

    server_version: str
    protocol_version: int
    catalogue: list[FunctionInfo]
    gpus: list[str]
    workers: int
    max_concurrent: int
    user: str
    session_id: str | None = None
    event_port: int = 0
    omero_user: str | None = None
    #: The Dask dashboard of the cluster that runs this server's wells, if any.
    dashboard_url: str | None = None


class PlatesReply(_Message, kw_only=True):
    """Plate references the user may pass as ``plate``."""

    plates: list[str]


class PlateInfoReply(_Message, kw_only=True):
    """The layout of the requested plate."""

    info: PlateInfoWire


class Submitted(_Message, kw_only=True):
    """The execution was stored; ``seq`` is its last event seq at reply time.

    A client that subscribes after this reply fetches ``since_seq=0`` once to
    catch the events published before its subscription took effect.
    ``stream_key`` goes into the event topic it subscribes to
    (``event_topic(execution_id, stream_key)``); the server admits that
    subscription only from the execution's owner.
    """

    execution_id: str
    wells: list[str]
    seq: int
    stream_key: str = ""


class PreviewReply(_Message, kw_only=True):
    """Images of one well after each step; ArrayRefs index this reply's buffers.

    ``images[i].name`` is ``"<step>/<channel>"``, with step ``"input"`` for the
    raw image and otherwise one of ``step_names``.
    """

    well: str
    step_names: list[str]
    images: list[ArrayRef]
    measurements: dict[str, float] = {}
    objects: int = 0
    site: int = 0
    elapsed: float = 0.0


class StatusReply(_Message, kw_only=True):
    """The record of the requested execution."""

    execution: ExecutionInfo


class ExecutionsReply(_Message, kw_only=True):
    """The user's executions, newest first."""

    executions: list[ExecutionInfo]


class CancelReply(_Message, kw_only=True):
    """The execution's state after the cancel request (``cancelled`` or finished)."""

    execution_id: str
    state: str


class FetchReply(_Message, kw_only=True):
    """Stored events ``seq > since_seq``; ArrayRefs in them index this reply's buffers.

    ``last_seq`` is the highest seq stored so far: fetch again from the last
    returned seq while it is lower. ``complete`` means the execution finished
    and every one of its events up to ``last_seq`` has been returned.
    """

    execution_id: str
    events: list[Event]
    last_seq: int
    complete: bool
    state: str = ""


class PyramidReply(_Message, kw_only=True):
    """``levels[name]`` lists ``[height, width]`` per level, level 0 full size."""

    levels: dict[str, list[list[int]]]


class TileReply(_Message, kw_only=True):
    """The tile's pixels: ``images`` holds one ref, named by the plane."""

    images: list[ArrayRef]


class ServerStatusReply(_Message, kw_only=True):
    """The server's load: totals over every user, and the caller's own count.

    ``queued_wells`` are wells still to start (of queued and running
    executions), ``running_wells`` those on a worker now. Nothing names or
    counts another user's executions one by one.
    """

    workers: int
    queued_wells: int
    running_wells: int
    active_executions: int
    user_active_executions: int


class WellObjectsReply(_Message, kw_only=True):
    """The object rows of one well and field, column by column.

    ``columns`` is every column in table order; a numeric one travels as an
    ArrayRef in ``numbers`` (one buffer per column, ``rows`` long), a text one
    (``object_set``) in ``text``. ``units`` names the unit of the columns that
    have one (``px``, ``px²``, ``rad``, ``%``).
    """

    execution_id: str
    well: str
    site: int
    rows: int
    columns: list[str]
    numbers: list[ArrayRef] = []
    text: dict[str, list[str | None]] = {}
    units: dict[str, str] = {}


class ErrorReply(_Message, kw_only=True):
    """The request failed; ``code`` is a key of ``ERROR_CODES``.

    ``rid`` is None when the request was too broken to read its id. This
    struct's ``type``, ``v``, ``rid``, ``code`` and ``message`` keys are kept in
    every protocol version, so any client can read a refusal.
    """

    rid: int | None
    code: str
    message: str
    remote_traceback: str | None = None
    details: dict[str, str | int | None] = {}


ServerReply = (
    HelloReply
    | PlatesReply
    | PlateInfoReply
    | Submitted
    | PreviewReply
    | StatusReply
    | ExecutionsReply
    | CancelReply
    | FetchReply
    | PyramidReply
    | TileReply
    | ServerStatusReply
    | WellObjectsReply
    | PresetAnswer
    | ErrorReply
)
