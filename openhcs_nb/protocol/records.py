"""Plain records that messages are built from, and the protocol version.

These structs are untagged: they only ever appear inside a tagged message, so
they need no ``type`` key. Enumerations that may grow (states, parameter types,
memory types) travel as ``str``, never as ``Literal`` or ``Enum``, so an older
peer still decodes a value added later (schema rule: types never change).

Schema-evolution rules (msgspec's, applied to every struct in this package):

1. A new field always has a default, so an older peer's message still decodes.
2. A field's type never changes; add a new field with a new name instead.
3. A tag (message class name) is never reused for a different message.
4. Unknown fields are ignored, so a newer peer's extra fields do no harm.

``PROTOCOL_VERSION`` changes only for a change those rules cannot express.
"""

from __future__ import annotations

from typing import Any

import msgspec

#: The protocol version this code speaks; carried in every message as ``v``.
PROTOCOL_VERSION = 2

#: States an execution can be in; the transition table lives in ``server/jobs.py``.
EXECUTION_STATES: tuple[str, ...] = (
    "queued",
    "running",
    "done",
    "failed",
    "cancelled",
)

#: States after which an execution publishes no further event.
FINISHED_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})

ParamValue = int | float | bool | str | None


class ArrayRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where one array travels: a raw frame after the header, with dtype and shape.

    ``frame`` indexes the buffers that follow the header (0 = the frame right
    after the header), so the topic frame of an event does not shift it.
    ``dtype`` is a numpy ``dtype.str`` from the codec's whitelist.
    """

    name: str
    dtype: str
    shape: list[int]
    frame: int


class ParamInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One catalogue parameter, enough for a client to build its widget."""

    name: str
    type: str
    default: ParamValue
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: list[ParamValue] = []
    required: bool = False


class FunctionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One catalogue function as the server has it (mirrors ``Function``)."""

    name: str
    version: str
    category: str
    help: str = ""
    input: str = "image"
    output: str = "image"
    memory_type: str = "numpy"
    params: list[ParamInfo] = []
    side_outputs: list[str] = []
    needs_labels: bool = False
    has_gpu: bool = False
    #: JSON Schema of the keyword arguments (``Function.schema()``); empty from
    #: servers older than the field.
    params_schema: dict[str, Any] = {}


class PlateInfoWire(msgspec.Struct, frozen=True, kw_only=True):
    """A plate's layout (mirrors ``plates.model.PlateLayout``)."""

    name: str
    wells: list[str]
    rows: list[str]
    columns: list[int]
    fields: int
    channels: list[str]
    z: int = 1
    t: int = 1
    dtype: str = "<u2"
    shape: list[int] = []


class SubmitOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to run a submitted pipeline; every option has a default."""

    preview_size: int = 256
    priority: int = 0
    label: str = ""


class ExecutionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The server's record of one execution, as of the reply.

    Times are Unix seconds. ``last_seq`` is the highest event seq recorded, so
    a client that wants everything it has not seen fetches ``since_seq`` = its
    own last seq, until it reaches ``last_seq``.
    """

    execution_id: str
    plate: str
    state: str
    user: str
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    total: int = 0
    done: int = 0
    failed: int = 0
    last_seq: int = 0
    label: str = ""
    error: str | None = None
    stream_key: str = ""
    omero_user: str | None = None
    note: str | None = None
