"""Every message survives encode -> decode unchanged, arrays bit for bit."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from protocol_samples import (
    client_samples,
    event_samples,
    server_samples,
    union_members,
)

from openhcs_nb.protocol import (
    PROTOCOL_VERSION,
    ClientMessage,
    Event,
    FetchReply,
    Hello,
    ServerReply,
    Submit,
    SubmitOptions,
    UnknownMessage,
    WellDone,
    decode_client,
    decode_event,
    decode_event_frames,
    decode_server,
    encode,
    event_frames,
    unpack_array,
)


def _ids(samples):
    return [type(s[0]).__name__ for s in samples]


def test_when_samples_are_listed_then_every_message_type_is_covered():
    assert {type(m) for m, _, _ in client_samples()} == union_members(ClientMessage)
    assert {type(m) for m, _, _ in server_samples()} == union_members(ServerReply)
    assert {type(e) for e in event_samples()} == union_members(Event)


@pytest.mark.parametrize(
    ("msg", "buffers", "arrays"), client_samples(), ids=_ids(client_samples())
)
def test_when_command_round_trips_then_it_is_equal(msg, buffers, arrays):
    decoded, got_buffers = decode_client(encode(msg, buffers))
    assert decoded == msg
    assert type(decoded) is type(msg)
    assert got_buffers == []


@pytest.mark.parametrize(
    ("msg", "buffers", "arrays"), server_samples(), ids=_ids(server_samples())
)
def test_when_reply_round_trips_then_it_and_its_arrays_are_identical(
    msg, buffers, arrays
):
    decoded, got_buffers = decode_server(encode(msg, buffers))
    assert decoded == msg
    refs = getattr(decoded, "images", None) or [
        ref
        for event in getattr(decoded, "events", [])
        for ref in getattr(event, "previews", [])
    ]
    assert len(refs) == len(arrays)
    for ref in refs:
        got = unpack_array(ref, got_buffers)
        want = arrays[ref.name]
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        assert not got.flags.writeable


@pytest.mark.parametrize("event", event_samples(), ids=lambda e: type(e).__name__)
def test_when_event_round_trips_with_and_without_topic_then_it_is_equal(event):
    buffers = []
    if isinstance(event, WellDone):
        buffers = [
            np.arange(16, dtype=np.uint16).reshape(4, 4),
            np.eye(4, dtype=np.int32),
        ]
    frames = event_frames(event, buffers)
    assert frames[0] == b"ex-1/"
    decoded, _ = decode_event_frames(frames)
    assert decoded == event
    assert decode_event(frames[1:])[0] == event


def test_when_message_is_encoded_then_header_is_frame_zero_with_type_and_version():
    header = encode(Hello(rid=3, client="c"))[0]
    raw = msgspec.msgpack.decode(header)
    assert raw["type"] == "Hello"
    assert raw["v"] == PROTOCOL_VERSION
    assert raw["rid"] == 3


def test_when_fetch_reply_carries_events_then_event_refs_index_the_reply_frames():
    msg, buffers, arrays = server_samples()[8]
    assert isinstance(msg, FetchReply)
    decoded, got = decode_server(encode(msg, buffers))
    done = next(e for e in decoded.events if isinstance(e, WellDone))
    labels = unpack_array(done.previews[1], got)
    np.testing.assert_array_equal(labels, arrays["labels"])


def test_when_newer_peer_adds_a_field_then_older_decoder_ignores_it():
    raw = msgspec.msgpack.decode(encode(Submit(rid=1, pipeline_code="x", plate="p"))[0])
    raw["added_in_a_later_release"] = {"anything": [1, 2]}
    raw["options"]["new_option"] = True
    decoded, _ = decode_client([msgspec.msgpack.encode(raw)])
    assert decoded == Submit(rid=1, pipeline_code="x", plate="p")


def test_when_older_peer_omits_defaulted_fields_then_defaults_are_used():
    header = msgspec.msgpack.encode(
        {
            "type": "Submit",
            "v": PROTOCOL_VERSION,
            "rid": 2,
            "pipeline_code": "x",
            "plate": "p",
        }
    )
    decoded, _ = decode_client([header])
    assert decoded.wells is None
    assert decoded.options == SubmitOptions()


def test_when_a_reply_reaches_the_command_decoder_then_it_is_an_unknown_command():
    header = encode(server_samples()[1][0])[0]
    with pytest.raises(UnknownMessage) as info:
        decode_client([header])
    assert info.value.code == "unknown_command"
    assert info.value.rid == 2


def test_when_summary_holds_numpy_scalars_then_they_travel_as_plain_numbers():
    event = WellDone(
        execution_id="ex-1",
        seq=1,
        time=0.0,
        well="A01",
        summary={"mean": np.float32(1.5), "count": np.int64(4)},
    )
    decoded, _ = decode_event(encode(event))
    assert decoded.summary == {"mean": 1.5, "count": 4}
    assert type(decoded.summary["count"]) is int
