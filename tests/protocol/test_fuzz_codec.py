"""Fuzzing: whatever the frames, decoding yields a message or a ProtocolError."""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_samples import client_samples, event_samples, server_samples

from openhcs_nb.protocol import (
    PROTOCOL_VERSION,
    ArrayRef,
    BadArray,
    ClientMessage,
    ProtocolError,
    decode_client,
    decode_event_frames,
    decode_server,
    encode,
    event_frames,
    unpack_array,
)

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_CLIENT_FRAMES = [encode(m, b) for m, b, _ in client_samples()]
_SERVER_FRAMES = [[bytes(f) for f in encode(m, b)] for m, b, _ in server_samples()]
_EVENT_FRAMES = [[bytes(f) for f in event_frames(e)] for e in event_samples()[:2]]

# msgpack-able values: what a confused or hostile peer could put in a header.
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["type", "v", "rid", "client", "plate", "pipeline_code", "execution_id", "images"]
)
_tags = st.sampled_from(
    ["Hello", "Submit", "Preview", "Fetch", "Status", "PreviewReply", "Bogus"]
)


def _decodes_or_refuses(decode, frames):
    try:
        result = decode(frames)
    except ProtocolError as exc:
        assert exc.code
        return None
    return result


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_when_frames_are_random_bytes_then_only_protocol_errors_escape(frames):
    result = _decodes_or_refuses(decode_client, frames)
    if result is not None:
        assert isinstance(result[0], ClientMessage)


@FUZZ
@given(
    st.dictionaries(_keys, _values, max_size=6),
    _tags,
    st.sampled_from([0, 1, 1, 1, 2]),
    st.lists(st.binary(max_size=16), max_size=3),
)
def test_when_header_is_a_random_map_then_only_protocol_errors_escape(
    fields, tag, version, buffers
):
    header = msgspec.msgpack.encode({"type": tag, "v": version, **fields})
    _decodes_or_refuses(decode_client, [header, *buffers])
    _decodes_or_refuses(decode_server, [header, *buffers])


@FUZZ
@given(
    st.sampled_from(range(len(_SERVER_FRAMES))),
    st.data(),
)
def test_when_a_valid_message_is_mutated_then_only_protocol_errors_escape(index, data):
    frames = list(_SERVER_FRAMES[index])
    target = data.draw(st.integers(0, len(frames) - 1), label="frame")
    raw = bytearray(frames[target])
    action = data.draw(st.sampled_from(["flip", "truncate", "insert", "drop-frame"]))
    if action == "flip" and raw:
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    elif action == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif action == "insert":
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    elif action == "drop-frame" and len(frames) > 1:
        del frames[target]
        raw = None
    if raw is not None:
        frames[target] = bytes(raw)
    result = _decodes_or_refuses(decode_server, frames)
    if result is not None:
        reply, buffers = result
        for ref in getattr(reply, "images", []):
            _decodes_or_refuses(lambda b, r=ref: unpack_array(r, b), buffers)


@FUZZ
@given(
    st.sampled_from(range(len(_CLIENT_FRAMES))),
    st.integers(min_value=0),
    st.integers(0, 255),
)
def test_when_a_command_byte_is_flipped_then_only_protocol_errors_escape(
    index, position, value
):
    raw = bytearray(_CLIENT_FRAMES[index][0])
    raw[position % len(raw)] = value
    _decodes_or_refuses(decode_client, [bytes(raw)])


@FUZZ
@given(
    st.sampled_from(range(len(_EVENT_FRAMES))),
    st.binary(max_size=20),
    st.booleans(),
)
def test_when_event_topic_or_header_is_garbled_then_only_protocol_errors_escape(
    index, junk, garble_topic
):
    frames = list(_EVENT_FRAMES[index])
    if garble_topic:
        frames[0] = junk
    else:
        frames[1] = frames[1][: len(junk)] + junk
    _decodes_or_refuses(decode_event_frames, frames)


_dims = st.integers(min_value=-3, max_value=2**64 - 1) | st.integers(0, 6)


@FUZZ
@given(
    st.sampled_from(["|b1", "|u1", "<u2", "<f8", ">u2", "|O", "<c8", "x"]),
    st.lists(_dims, max_size=8),
    st.integers(-2, 3),
    st.lists(st.binary(max_size=48), max_size=3),
)
def test_when_a_ref_names_any_dtype_shape_and_frame_then_unpack_views_or_refuses(
    dtype, shape, frame, buffers
):
    ref = ArrayRef(name="fuzz", dtype=dtype, shape=shape, frame=frame)
    try:
        arr = unpack_array(ref, buffers)
    except BadArray:
        return
    assert arr.shape == tuple(shape)
    assert arr.nbytes == len(buffers[frame])
    header = msgspec.msgpack.encode(
        {
            "type": "PreviewReply",
            "v": PROTOCOL_VERSION,
            "rid": 1,
            "well": "A01",
            "step_names": [],
            "images": [msgspec.to_builtins(ref)],
        }
    )
    reply, got = decode_server([header, *buffers])
    assert unpack_array(reply.images[0], got).tobytes() == arr.tobytes()
