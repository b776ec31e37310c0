"""Refusals: version, limits, malformed frames and arrays; each a typed error."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from openhcs_nb.protocol import (
    ERROR_CODES,
    PROTOCOL_VERSION,
    BadArray,
    Hello,
    Limits,
    MalformedMessage,
    MessageTooLarge,
    PreviewReply,
    ProtocolError,
    Queued,
    Status,
    UnknownMessage,
    VersionMismatch,
    decode_client,
    decode_event_frames,
    decode_server,
    encode,
    event_frames,
    event_topic,
    pack_arrays,
)

# A map whose "client" value nests 50,000 arrays deep.
_DEEP = (
    b"\x84\xa4type\xa5Hello\xa1v"
    + bytes([PROTOCOL_VERSION])
    + b"\xa3rid\x01\xa6client"
    + b"\x91" * 50_000
    + b"\x00"
)

# A map whose "client" string is not UTF-8 (msgspec raises UnicodeDecodeError).
_BAD_UTF8 = (
    b"\x84\xa4type\xa5Hello\xa1v"
    + bytes([PROTOCOL_VERSION])
    + b"\xa3rid\x01\xa6client\xa2\xff\xfe"
)


def _header(**fields):
    return msgspec.msgpack.encode(fields)


def _preview_header(images):
    return _header(
        type="PreviewReply",
        v=PROTOCOL_VERSION,
        rid=4,
        well="A01",
        step_names=[],
        images=images,
    )


# --- version ------------------------------------------------------------------


def test_when_client_speaks_version_0_then_server_refuses_naming_both_versions():
    frames = [_header(type="Hello", v=0, rid=1, client="old")]
    with pytest.raises(VersionMismatch) as info:
        decode_client(frames)
    assert (
        str(info.value)
        == f"protocol version 0 is not supported by this server (speaks {PROTOCOL_VERSION})"
    )
    assert info.value.code == "version_mismatch"
    assert info.value.rid == 1
    assert (info.value.remote_version, info.value.local_version) == (
        0,
        PROTOCOL_VERSION,
    )


def test_when_old_message_also_breaks_the_schema_then_version_is_still_reported():
    frames = [_header(type="Hello", v=0, rid="not-an-int", client=42, gone_field=[1])]
    with pytest.raises(VersionMismatch, match="version 0 is not supported"):
        decode_client(frames)


def test_when_old_message_type_no_longer_exists_then_version_is_reported_first():
    with pytest.raises(VersionMismatch):
        decode_client([_header(type="RetiredCommand", v=0, rid=1)])


def test_when_server_speaks_a_newer_version_then_client_refuses_it():
    frames = [_header(type="PlatesReply", v=PROTOCOL_VERSION + 1, rid=2, plates=[])]
    with pytest.raises(VersionMismatch) as info:
        decode_server(frames)
    assert (
        str(info.value)
        == f"protocol version {PROTOCOL_VERSION + 1} is not supported by this client (speaks {PROTOCOL_VERSION})"
    )


# --- limits -------------------------------------------------------------------


def test_when_message_has_too_many_frames_then_too_large():
    frames = [encode(Status(rid=1, execution_id="e"))[0]] + [b"x"] * 4
    with pytest.raises(MessageTooLarge, match="5 frames, at most 4"):
        decode_client(frames, limits=Limits(max_frames=4))


def test_when_header_is_too_big_then_it_is_refused_before_parsing():
    garbage = b"\xc1" * 2048  # not msgpack: parsing would say malformed
    with pytest.raises(MessageTooLarge, match="header of 2048 bytes"):
        decode_client([garbage], limits=Limits(max_header_bytes=1024))


def test_when_total_bytes_exceed_the_limit_then_too_large_before_array_checks():
    header = _preview_header([])  # no ref names the frame: size is checked anyway
    with pytest.raises(MessageTooLarge, match="at most 1000"):
        decode_server([header, b"\x00" * 2000], limits=Limits(max_message_bytes=1000))


def test_when_sender_builds_an_oversize_message_then_encode_refuses():
    refs, buffers = pack_arrays([np.zeros(1000, np.uint8)])
    msg = PreviewReply(rid=1, well="A01", step_names=[], images=refs)
    with pytest.raises(MessageTooLarge):
        encode(msg, buffers, limits=Limits(max_message_bytes=500))


def test_when_array_has_more_dims_than_allowed_then_bad_array():
    refs, buffers = pack_arrays([np.zeros((1, 1, 1, 2), np.uint8)])
    frames = encode(
        PreviewReply(rid=1, well="A01", step_names=[], images=refs), buffers
    )
    with pytest.raises(BadArray, match="4 dims, at most 3"):
        decode_server(frames, limits=Limits(max_array_ndim=3))


# --- malformed ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "error", "match"),
    [
        ([], MalformedMessage, "at least a header"),
        (b"\x81\xa1v\x01", MalformedMessage, "list of frames"),
        ([42], MalformedMessage, "frame 0 is not"),
        ([b""], MalformedMessage, "not valid msgpack"),
        ([b"\xc1\xc1"], MalformedMessage, "not valid msgpack"),
        (
            [encode(Hello(rid=1, client="c"))[0][:-3]],
            MalformedMessage,
            "not valid msgpack",
        ),
        ([msgspec.msgpack.encode([1, 2, 3])], MalformedMessage, "not a msgpack map"),
        ([msgspec.msgpack.encode(7)], MalformedMessage, "not a msgpack map"),
        ([_DEEP], MalformedMessage, "recursion depth"),
        ([_BAD_UTF8], MalformedMessage, "utf-8"),
        (
            [_header(type="Hello", v=PROTOCOL_VERSION, rid=1, client=5)],
            MalformedMessage,
            r"\$\.client",
        ),
        (
            [_header(type="Hello", v=PROTOCOL_VERSION, rid=1)],
            MalformedMessage,
            "client",
        ),
        ([_header(v=PROTOCOL_VERSION, rid=1, client="c")], MalformedMessage, "type"),
        (
            [_header(type="Shutdown", v=PROTOCOL_VERSION, rid=1)],
            UnknownMessage,
            "unknown command type",
        ),
        ([_header(type="Hello", v="1", rid=1, client="c")], MalformedMessage, r"\$\.v"),
        (
            [_header(type="Hello", v=True, rid=1, client="c")],
            MalformedMessage,
            r"\$\.v",
        ),
    ],
    ids=[
        "no-frames",
        "bytes-not-list",
        "not-a-buffer",
        "empty-header",
        "not-msgpack",
        "truncated",
        "array-header",
        "int-header",
        "deep-nesting",
        "invalid-utf8",
        "wrong-type",
        "missing-field",
        "missing-tag",
        "unknown-tag",
        "string-version",
        "bool-version",
    ],
)
def test_when_frames_are_malformed_then_the_typed_error_is_raised(frames, error, match):
    with pytest.raises(error, match=match) as info:
        decode_client(frames)
    assert info.value.code in ERROR_CODES


def test_when_schema_error_has_a_readable_rid_then_the_error_carries_it():
    with pytest.raises(MalformedMessage) as info:
        decode_client(
            [_header(type="Status", v=PROTOCOL_VERSION, rid=77, execution_id=None)]
        )
    assert info.value.rid == 77


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        (
            {"name": "big", "dtype": "<f8", "shape": [100_000, 100_000], "frame": 0},
            "needs",
        ),
        ({"name": "far", "dtype": "|u1", "shape": [4], "frame": 3}, "out of range"),
        ({"name": "obj", "dtype": "|O", "shape": [4], "frame": 0}, "not allowed"),
        ({"name": "neg", "dtype": "|u1", "shape": [-2, -2], "frame": 0}, "negative"),
        ({"name": "be", "dtype": ">u2", "shape": [2], "frame": 0}, "not allowed"),
    ],
    ids=[
        "huge-shape",
        "frame-out-of-range",
        "object-dtype",
        "negative-shape",
        "big-endian",
    ],
)
def test_when_header_ref_does_not_fit_the_frames_then_bad_array(ref, match):
    frames = [_preview_header([ref]), b"\x00" * 4]
    with pytest.raises(BadArray, match=match) as info:
        decode_server(frames)
    assert info.value.rid == 4


def test_when_ref_is_not_a_struct_then_malformed_not_bad_array():
    frames = [
        _preview_header([{"name": "x", "dtype": "|u1", "shape": "4", "frame": 0}]),
        b"\x00" * 4,
    ]
    with pytest.raises(MalformedMessage, match=r"\$\.images\[0\]\.shape"):
        decode_server(frames)


def test_when_encoding_a_non_message_then_malformed():
    with pytest.raises(MalformedMessage, match="not a protocol message"):
        encode({"type": "Hello"})


def test_when_a_message_field_holds_an_array_then_encode_points_to_frames():
    msg = PreviewReply(
        rid=1, well="A01", step_names=[], images=[], measurements={"a": np.zeros(3)}
    )
    with pytest.raises(MalformedMessage, match="arrays travel as frames"):
        encode(msg)


def test_when_encoded_refs_do_not_match_the_buffers_then_bad_array():
    refs, _ = pack_arrays([np.zeros(8, np.uint8)])
    with pytest.raises(BadArray, match="frame 0 out of range"):
        encode(PreviewReply(rid=1, well="A01", step_names=[], images=refs))


def test_every_protocol_error_code_is_in_the_error_table():
    for cls in (
        MalformedMessage,
        UnknownMessage,
        MessageTooLarge,
        VersionMismatch,
        BadArray,
    ):
        assert issubclass(cls, ProtocolError)
        assert cls.code in ERROR_CODES


# --- PUB topic ----------------------------------------------------------------


def test_when_topic_does_not_name_the_event_execution_then_malformed():
    frames = event_frames(Queued(execution_id="ex-1", seq=1, time=0.0, position=0))
    frames[0] = event_topic("ex-2")
    with pytest.raises(MalformedMessage, match="does not match"):
        decode_event_frames(frames)


def test_when_one_id_prefixes_another_then_their_topics_do_not():
    assert not event_topic("ex-12").startswith(event_topic("ex-1"))


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "é", "x" * 129])
def test_when_execution_id_cannot_be_a_topic_then_malformed(bad):
    with pytest.raises(MalformedMessage, match="not a valid execution id"):
        event_topic(bad)


def test_when_frames_are_zmq_frames_then_they_decode_like_bytes():
    zmq = pytest.importorskip("zmq")
    refs, buffers = pack_arrays({"a": np.arange(5, dtype=np.int32)})
    sent = encode(PreviewReply(rid=1, well="A01", step_names=[], images=refs), buffers)
    frames = [zmq.Frame(bytes(f)) for f in sent]
    reply, got = decode_server(frames)
    assert reply.images == refs
    assert bytes(got[0]) == bytes(sent[1])
