"""The openhcs-nb wire protocol, sans-IO: typed messages to frames and back.

Nothing in this package opens a socket or imports zmq. The server (ROUTER +
PUB) and the client (DEALER + SUB) hand received frames to ``decode_*`` and
send what ``encode`` / ``event_frames`` return. The spec is ``docs/protocol.md``.

A typical exchange::

    refs, buffers = pack_arrays({"DAPI": image})
    frames = encode(PreviewReply(rid=7, well="B03", step_names=[], images=refs),
                    buffers)
    reply, buffers = decode_server(frames)
    image = unpack_array(reply.images[0], buffers)   # read-only, no copy
"""

from __future__ import annotations

from openhcs_nb.protocol._arrays import (
    ALLOWED_DTYPES,
    ArrayPacker,
    pack_arrays,
    unpack_array,
    unpack_arrays,
)
from openhcs_nb.protocol._convert import (
    catalogue_to_wire,
    error_reply,
    function_to_wire,
    plate_info_to_wire,
)
from openhcs_nb.protocol.codec import (
    DEFAULT_LIMITS,
    Limits,
    decode_client,
    decode_event,
    decode_event_frames,
    decode_server,
    encode,
    event_frames,
    event_topic,
    parse_topic,
)
from openhcs_nb.protocol.errors import (
    ERROR_CODES,
    BadArray,
    MalformedMessage,
    MessageTooLarge,
    ProtocolError,
    UnknownMessage,
    VersionMismatch,
)
from openhcs_nb.protocol.events import (
    Event,
    Finished,
    Progress,
    Queued,
    Started,
    WellDone,
    WellFailed,
    WellStarted,
)
from openhcs_nb.protocol.messages import (
    Cancel,
    CancelReply,
    ClientMessage,
    ErrorReply,
    ExecutionsReply,
    Fetch,
    FetchReply,
    Hello,
    HelloReply,
    ListExecutions,
    ListPlates,
    PlateInfo,
    PlateInfoReply,
    PlatesReply,
    Preview,
    PreviewReply,
    ServerReply,
    Status,
    StatusReply,
    Submit,
    Submitted,
)
from openhcs_nb.protocol.records import (
    EXECUTION_STATES,
    FINISHED_STATES,
    PROTOCOL_VERSION,
    ArrayRef,
    ExecutionInfo,
    FunctionInfo,
    ParamInfo,
    PlateInfoWire,
    SubmitOptions,
)
from openhcs_nb.protocol.sequencing import SeqTracker, SeqVerdict

__all__ = [
    "ALLOWED_DTYPES",
    "DEFAULT_LIMITS",
    "ERROR_CODES",
    "EXECUTION_STATES",
    "FINISHED_STATES",
    "PROTOCOL_VERSION",
    "ArrayPacker",
    "ArrayRef",
    "BadArray",
    "Cancel",
    "CancelReply",
    "ClientMessage",
    "ErrorReply",
    "Event",
    "ExecutionInfo",
    "ExecutionsReply",
    "Fetch",
    "FetchReply",
    "Finished",
    "FunctionInfo",
    "Hello",
    "HelloReply",
    "Limits",
    "ListExecutions",
    "ListPlates",
    "MalformedMessage",
    "MessageTooLarge",
    "ParamInfo",
    "PlateInfo",
    "PlateInfoReply",
    "PlateInfoWire",
    "PlatesReply",
    "Preview",
    "PreviewReply",
    "Progress",
    "ProtocolError",
    "Queued",
    "SeqTracker",
    "SeqVerdict",
    "ServerReply",
    "Started",
    "Status",
    "StatusReply",
    "Submit",
    "SubmitOptions",
    "Submitted",
    "UnknownMessage",
    "VersionMismatch",
    "WellDone",
    "WellFailed",
    "WellStarted",
    "catalogue_to_wire",
    "decode_client",
    "decode_event",
    "decode_event_frames",
    "decode_server",
    "encode",
    "error_reply",
    "event_frames",
    "event_topic",
    "parse_topic",
    "function_to_wire",
    "pack_arrays",
    "plate_info_to_wire",
    "unpack_array",
    "unpack_arrays",
]
