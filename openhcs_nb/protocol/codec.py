"""Frames <-> typed messages: the only place bytes become messages (sans-IO).

A message is a list of frames: ``[header, *buffers]``. The header is the
msgpack encoding of one tagged struct; each buffer is the raw bytes of one
array that an :class:`~openhcs_nb.protocol.records.ArrayRef` in the header
names by index. Events on PUB get one more frame in front: the topic.

Decoding is strict and in this order, so a hostile or broken peer costs little:

1. frame count and sizes against :class:`Limits` (no parsing yet),
2. the header, with one typed decoder per direction (``v`` checked even when
   the rest of the header does not decode, so an old peer hears
   "protocol version 0 is not supported ..." and not a schema error),
3. every ArrayRef against its frame (dtype whitelist, ndim, exact size).

Every failure is a :class:`~openhcs_nb.protocol.errors.ProtocolError`; no
other exception escapes a decode function. Nothing here does IO or imports zmq:
the server and client pass in the frames their sockets received (``bytes``,
``memoryview`` or ``zmq.Frame``; anything with the buffer protocol).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

import msgspec
import numpy as np

from openhcs_nb.protocol._arrays import as_byte_view, check_ref, iter_refs
from openhcs_nb.protocol.errors import (
    BadArray,
    MalformedMessage,
    MessageTooLarge,
    ProtocolError,
    UnknownMessage,
    VersionMismatch,
)
from openhcs_nb.protocol.events import Event
from openhcs_nb.protocol.messages import ClientMessage, ServerReply
from openhcs_nb.protocol.records import PROTOCOL_VERSION

_MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds a message must keep; checked before any parsing.

    ``max_frames`` counts the header too (not the PUB topic frame).
    """

    max_message_bytes: int = 512 * _MIB
    max_frames: int = 8192
    max_header_bytes: int = 16 * _MIB
    max_array_ndim: int = 6


DEFAULT_LIMITS = Limits()

#: Characters an execution id may use; it becomes the PUB topic.
EXECUTION_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")

#: Ends every topic, so subscribing to ``event_topic("ab")`` never matches "abc".
TOPIC_END = b"/"

#: Characters a stream key may use (the server makes them as hex).
STREAM_KEY_PATTERN = re.compile(r"[A-Za-z0-9]{0,64}\Z")


class _Envelope(msgspec.Struct):
    """The keys read from a header that failed to decode, to explain why."""

    type: Any = None
    v: Any = None
    rid: Any = None


@dataclass(frozen=True)
class _Direction:
    decoder: msgspec.msgpack.Decoder[Any]
    tags: frozenset[str]
    me: str
    what: str


def _tags(union: Any) -> frozenset[str]:
    return frozenset(cls.__struct_config__.tag for cls in get_args(union))


_TO_SERVER = _Direction(
    msgspec.msgpack.Decoder(ClientMessage), _tags(ClientMessage), "server", "command"
)
_TO_CLIENT = _Direction(
    msgspec.msgpack.Decoder(ServerReply), _tags(ServerReply), "client", "reply"
)
_EVENTS = _Direction(msgspec.msgpack.Decoder(Event), _tags(Event), "client", "event")
_ENVELOPE = msgspec.msgpack.Decoder(_Envelope)
_EVENT_TYPES: frozenset[type] = frozenset(get_args(Event))
_ENCODABLE: frozenset[type] = frozenset(
    get_args(ClientMessage) + get_args(ServerReply) + get_args(Event)
)


def _enc_hook(obj: Any) -> Any:
    """Numpy scalars (a float32 mean, an int64 count) travel as plain numbers."""
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return obj.item()
    if isinstance(obj, np.ndarray):
        raise TypeError("arrays travel as frames: use pack_arrays or ArrayPacker")
    raise TypeError(f"{type(obj).__name__} cannot be encoded")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_enc_hook)


def encode(
    msg: Any, buffers: Sequence[Any] = (), *, limits: Limits = DEFAULT_LIMITS
) -> list[bytes | memoryview]:
    """``[header, *buffers]`` for ``msg``; the buffers are passed on uncopied.

    ``buffers`` come from :func:`pack_arrays` or :class:`ArrayPacker`, whose
    refs ``msg`` embeds.

    Raises
    ------
    MalformedMessage
        ``msg`` is not a protocol message, or a field holds an unencodable value.
    BadArray
        A buffer is not a C-contiguous buffer, or a ref does not fit its buffer.
    MessageTooLarge
        The frames break ``limits``; the message must be split (e.g. smaller
        fetch ``limit``).
    """
    if type(msg) not in _ENCODABLE:
        raise MalformedMessage(f"{type(msg).__name__} is not a protocol message")
    rid = getattr(msg, "rid", None)
    views: list[memoryview] = []
    for index, buffer in enumerate(buffers):
        try:
            views.append(as_byte_view(buffer))
        except (TypeError, ValueError) as exc:
            raise BadArray(f"buffer {index}: {exc}", rid=rid) from None
    _check_arrays(msg, views, limits, rid)
    try:
        header = _ENCODER.encode(msg)
    except (msgspec.EncodeError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedMessage(
            f"cannot encode {type(msg).__name__}: {exc}", rid=rid
        ) from None
    _check_sizes(len(header), [v.nbytes for v in views], limits)
    return [header, *views]


def decode_client(
    frames: Sequence[Any], *, limits: Limits = DEFAULT_LIMITS
) -> tuple[ClientMessage, list[memoryview]]:
    """The command in ``frames`` (after the ROUTER envelope) and its buffers.

    Raises
    ------
    ProtocolError
        ``MessageTooLarge``, ``VersionMismatch``, ``UnknownMessage``,
        ``MalformedMessage`` or ``BadArray``; ``.rid`` is set when it could
        be read. The connection survives: answer with an ErrorReply.
    """
    return _decode(frames, _TO_SERVER, limits)


def decode_server(
    frames: Sequence[Any], *, limits: Limits = DEFAULT_LIMITS
) -> tuple[ServerReply, list[memoryview]]:
    """The reply in ``frames`` (from the DEALER) and its buffers.

    Raises
    ------
    ProtocolError
        As :func:`decode_client`; the reply is lost, the connection survives.
    """
    return _decode(frames, _TO_CLIENT, limits)


def decode_event(
    frames: Sequence[Any], *, limits: Limits = DEFAULT_LIMITS
) -> tuple[Event, list[memoryview]]:
    """The event in ``frames`` (no topic frame) and its buffers.

    Raises
    ------
    ProtocolError
        As :func:`decode_client`; backfill the lost event with a Fetch.
    """
    return _decode(frames, _EVENTS, limits)


def event_topic(execution_id: str, stream_key: str = "") -> bytes:
    """The PUB topic of an execution: ``<id>/<stream key>/`` in ASCII.

    The stream key is the execution's capability: the server admits a
    subscription to this exact topic only from the execution's owner, and
    never a prefix of it (so ``b""`` subscribes to nothing).

    Raises
    ------
    MalformedMessage
        The id or key has characters outside their patterns.
    """
    if not isinstance(execution_id, str) or not EXECUTION_ID_PATTERN.match(
        execution_id
    ):
        raise MalformedMessage(f"{execution_id!r} is not a valid execution id")
    if not isinstance(stream_key, str) or not STREAM_KEY_PATTERN.match(stream_key):
        raise MalformedMessage("the stream key is not valid")
    topic = execution_id.encode("ascii") + TOPIC_END
    return topic + stream_key.encode("ascii") + TOPIC_END if stream_key else topic


def parse_topic(topic: bytes) -> tuple[str, str]:
    """``(execution id, stream key)`` of a topic made by :func:`event_topic`.

    Raises
    ------
    MalformedMessage
        ``topic`` is not exactly such a topic.
    """
    try:
        text = bytes(topic).decode("ascii")
    except UnicodeDecodeError:
        raise MalformedMessage("the topic is not ASCII") from None
    parts = text.split("/")
    if len(parts) == 2 and parts[1] == "":
        parts = [parts[0], "", ""]
    if len(parts) != 3 or parts[2] != "":
        raise MalformedMessage(f"{text[:140]!r} is not an event topic")
    execution_id, stream_key = parts[0], parts[1]
    if event_topic(execution_id, stream_key) != bytes(topic):
        raise MalformedMessage(f"{text[:140]!r} is not an event topic")
    return execution_id, stream_key


def event_frames(
    event: Event, buffers: Sequence[Any] = (), *, limits: Limits = DEFAULT_LIMITS
) -> list[bytes | memoryview]:
    """``[topic, header, *buffers]`` to send on PUB.

    Raises
    ------
    ProtocolError
        As :func:`encode`, or the execution id cannot be a topic.
    """
    if type(event) not in _EVENT_TYPES:
        raise MalformedMessage(f"{type(event).__name__} is not an event")
    return [event_topic(event.execution_id), *encode(event, buffers, limits=limits)]


def decode_event_frames(
    frames: Sequence[Any], *, limits: Limits = DEFAULT_LIMITS
) -> tuple[Event, list[memoryview]]:
    """The event in frames received on SUB (topic first), checked against its topic.

    Raises
    ------
    ProtocolError
        As :func:`decode_event`, or the topic does not name the event's
        execution. Backfill the lost event with a Fetch.
    """
    if isinstance(frames, (bytes, bytearray, memoryview, str)) or len(frames) < 2:
        raise MalformedMessage("an event needs a topic frame and a header frame")
    try:
        topic = bytes(as_byte_view(frames[0]))
    except (TypeError, ValueError):
        raise MalformedMessage("the topic frame is not bytes") from None
    event, buffers = _decode(frames[1:], _EVENTS, limits)
    if parse_topic(topic)[0] != event.execution_id:
        raise MalformedMessage(
            f"topic {topic[:140]!r} does not match execution {event.execution_id!r}"
        )
    return event, buffers


def _decode(
    frames: Sequence[Any], direction: _Direction, limits: Limits
) -> tuple[Any, list[memoryview]]:
    views = _frame_views(frames, limits)
    header, buffers = views[0], views[1:]
    try:
        msg = direction.decoder.decode(header)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _explain(header, direction, exc) from None
    rid = getattr(msg, "rid", None)
    if msg.v != PROTOCOL_VERSION:
        raise VersionMismatch(msg.v, PROTOCOL_VERSION, me=direction.me, rid=rid)
    _check_arrays(msg, buffers, limits, rid)
    return msg, buffers


def _frame_views(frames: Sequence[Any], limits: Limits) -> list[memoryview]:
    """Byte views of every frame, refused on count or size before any parsing."""
    if isinstance(frames, (bytes, bytearray, memoryview, str)):
        raise MalformedMessage("expected a list of frames, got one bytes object")
    try:
        count = len(frames)
    except TypeError:
        raise MalformedMessage("expected a list of frames") from None
    if count == 0:
        raise MalformedMessage("a message needs at least a header frame")
    if count > limits.max_frames:
        raise MessageTooLarge(
            f"{count} frames, at most {limits.max_frames} allowed per message"
        )
    views: list[memoryview] = []
    for index, frame in enumerate(frames):
        try:
            views.append(as_byte_view(frame))
        except (TypeError, ValueError):
            raise MalformedMessage(
                f"frame {index} is not a contiguous bytes buffer "
                f"({type(frame).__name__})"
            ) from None
    try:
        _check_sizes(views[0].nbytes, [v.nbytes for v in views[1:]], limits)
    except MessageTooLarge as exc:
        if views[0].nbytes <= limits.max_header_bytes:
            exc.rid = _peek_rid(views[0])
        raise
    return views


def _peek_rid(header: memoryview) -> int | None:
    """The request id of a refused message, so its sender hears which one."""
    try:
        rid = _ENVELOPE.decode(header).rid
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    return rid if type(rid) is int else None


def _check_sizes(header: int, buffers: list[int], limits: Limits) -> None:
    if 1 + len(buffers) > limits.max_frames:
        raise MessageTooLarge(
            f"{1 + len(buffers)} frames, at most {limits.max_frames} allowed"
        )
    if header > limits.max_header_bytes:
        raise MessageTooLarge(
            f"header of {header} bytes, at most {limits.max_header_bytes} allowed"
        )
    total = header + sum(buffers)
    if total > limits.max_message_bytes:
        raise MessageTooLarge(
            f"message of {total} bytes, at most {limits.max_message_bytes} allowed"
        )


def _check_arrays(
    msg: Any, buffers: list[memoryview], limits: Limits, rid: int | None
) -> None:
    lengths = [b.nbytes for b in buffers]
    try:
        for ref in iter_refs(msg):
            check_ref(ref, lengths, limits.max_array_ndim)
    except BadArray as exc:
        exc.rid = rid
        raise


def _explain(
    header: memoryview, direction: _Direction, exc: Exception
) -> ProtocolError:
    """The most useful error for a header the typed decoder refused."""
    try:
        env = _ENVELOPE.decode(header)
    except msgspec.ValidationError as peek_exc:
        return MalformedMessage(f"the header is not a msgpack map: {peek_exc}")
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as peek_exc:
        return MalformedMessage(f"the header is not valid msgpack: {peek_exc}")
    rid = env.rid if type(env.rid) is int else None
    if type(env.v) is int and env.v != PROTOCOL_VERSION:
        return VersionMismatch(env.v, PROTOCOL_VERSION, me=direction.me, rid=rid)
    if isinstance(env.type, str) and env.type not in direction.tags:
        known = ", ".join(sorted(direction.tags))
        return UnknownMessage(
            f"unknown {direction.what} type {env.type[:64]!r} (known: {known})",
            rid=rid,
        )
    return MalformedMessage(f"invalid {direction.what}: {exc}", rid=rid)
