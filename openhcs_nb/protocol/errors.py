"""Errors of the wire protocol, and the table of every code an ErrorReply may carry.

A :class:`ProtocolError` means a list of frames could not become a message, or a
message could not become frames. Each subclass has a stable ``code`` that the
server copies into ``ErrorReply.code``. ``rid`` is the request id when it could
still be read from the broken header, so the server can answer the right request.

Whether the connection survives: always. A refused message is dropped (and, on
the server, answered with an ErrorReply); the peer may send the next one. Only
``version_mismatch`` means no later message from that peer will decode either.
"""

from __future__ import annotations

from openhcs_nb.errors import OpenHCSError


class ProtocolError(OpenHCSError):
    """Frames that are not a valid message, or a message that cannot be framed."""

    code = "protocol_error"

    def __init__(self, message: str, *, rid: int | None = None) -> None:
        self.rid = rid
        super().__init__(message)


class MalformedMessage(ProtocolError):
    """The header is not msgpack, or does not match the message schema."""

    code = "malformed"


class UnknownMessage(MalformedMessage):
    """The header names a message type this side does not know (a newer peer)."""

    code = "unknown_command"


class MessageTooLarge(ProtocolError):
    """The message breaks a :class:`~openhcs_nb.protocol.codec.Limits` bound."""

    code = "too_large"


class VersionMismatch(ProtocolError):
    """The peer speaks another protocol version; nothing it sends will decode."""

    code = "version_mismatch"

    def __init__(
        self, remote: int, local: int, *, me: str, rid: int | None = None
    ) -> None:
        self.remote_version = remote
        self.local_version = local
        super().__init__(
            f"protocol version {remote} is not supported by this {me} (speaks {local})",
            rid=rid,
        )


class BadArray(ProtocolError):
    """An ArrayRef has a refused dtype or shape, or does not match its frame."""

    code = "bad_array"


#: Every code an ``ErrorReply`` may carry, with its meaning. ``docs/protocol.md``
#: lists the same table; a test keeps the two equal. Codes are never reused.
ERROR_CODES: dict[str, str] = {
    "malformed": "the request frames are not a valid message of this protocol",
    "too_large": "the request breaks a size limit (bytes, frames, header, ndim)",
    "version_mismatch": "the client speaks another protocol version",
    "bad_array": "an ArrayRef's dtype or shape is refused or does not fit its frame",
    "unknown_command": "the message type is not known to this server",
    "bad_pipeline_code": "the loader refused the pipeline code (details: line, col)",
    "invalid_pipeline": "a step or parameter is invalid (details: step, field)",
    "compile_error": "the pipeline does not fit the plate (details: step, key)",
    "unknown_plate": "no plate of that name or id is visible to this user",
    "unknown_well": "the well is not on the plate (details: well)",
    "plate_error": "the plate exists but its layout or pixels could not be read",
    "unknown_execution": "no execution with that id is visible to this user",
    "not_authorized": "the user may not do this (plate permissions, other's run)",
    "session_invalid": "the OMERO session key is unknown or expired; say Hello again",
    "quota_exceeded": "the user's queued or running executions are at their limit",
    "rate_limited": "too many requests; retry later (details: retry_after seconds)",
    "busy": "the server cannot take more work now, or the client has too many "
    "unread replies; retry later",
    "storage_error": "the server could not write to its disk (full?); nothing "
    "was started",
    "well_timeout": "a well or preview ran longer than the server's time limit",
    "untrusted_code": "own functions were refused by the server's [trust] policy; "
    "nothing ran",
    "internal": "the server failed; details carry an incident id for its log",
    "frontend_needs_session": "a web front-end key must present a live OMERO "
    "session in Hello before anything else",
    "unknown_preset": "no preset of that name is visible to this user",
    "preset_exists": "a preset of that name exists; save with replace=True",
}
