"""Arrays travel as raw frames: zero-copy, read-only, whitelisted dtypes only."""

from __future__ import annotations

import numpy as np
import pytest
from protocol_samples import arrays_of_many_dtypes

from openhcs_nb.protocol import (
    ALLOWED_DTYPES,
    ArrayPacker,
    ArrayRef,
    BadArray,
    PreviewReply,
    decode_server,
    encode,
    pack_arrays,
    unpack_array,
    unpack_arrays,
)


def _preview(refs):
    return PreviewReply(rid=1, well="A01", step_names=[], images=refs)


def _round_trip(arrays):
    refs, buffers = pack_arrays(arrays)
    reply, got = decode_server(encode(_preview(refs), buffers))
    return unpack_arrays(reply.images, got)


@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
def test_when_allowed_dtype_round_trips_then_bits_are_identical_and_memory_shared(
    dtype,
):
    original = (np.arange(24) % 2).astype(dtype).reshape(2, 3, 4)
    got = _round_trip({"a": original})["a"]
    assert got.dtype == original.dtype
    assert got.tobytes() == original.tobytes()
    assert np.shares_memory(got, original)
    assert not got.flags.writeable


def test_when_many_dtypes_travel_in_one_message_then_each_is_recovered():
    arrays = arrays_of_many_dtypes()
    got = _round_trip(arrays)
    assert set(got) == set(arrays)
    for name, want in arrays.items():
        assert got[name].dtype == want.dtype
        assert got[name].shape == want.shape
        assert got[name].tobytes() == want.tobytes()


def test_when_frames_arrive_as_bytes_then_arrays_view_them_read_only():
    original = np.arange(12, dtype="<f4").reshape(3, 4)
    refs, buffers = pack_arrays([original])
    frames = [bytes(f) for f in encode(_preview(refs), buffers)]
    reply, got = decode_server(frames)
    arr = unpack_array(reply.images[0], got)
    assert np.shares_memory(arr, np.frombuffer(frames[1], dtype=np.uint8))
    assert not arr.flags.writeable
    np.testing.assert_array_equal(arr, original)


def test_when_array_is_big_endian_then_it_travels_little_endian_with_equal_values():
    original = np.arange(6, dtype=">u2").reshape(2, 3)
    (ref,), _ = pack_arrays([original])
    got = _round_trip([original])["0"]
    assert ref.dtype == "<u2"
    assert got.dtype.str == "<u2"
    np.testing.assert_array_equal(got, original)


def test_when_array_is_not_contiguous_then_a_contiguous_copy_travels():
    base = np.arange(40, dtype=np.uint16).reshape(5, 8)
    view = base[:, ::2]
    got = _round_trip({"v": view})["v"]
    np.testing.assert_array_equal(got, view)
    assert not np.shares_memory(got, base)


@pytest.mark.parametrize(
    "array",
    [
        np.array([object(), 1], dtype=object),
        np.array(["a", "b"]),
        np.zeros(3, dtype=np.complex64),
        np.zeros(3, dtype="datetime64[s]"),
        np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4")]),
    ],
    ids=["object", "str", "complex", "datetime", "structured"],
)
def test_when_dtype_is_not_plain_numeric_then_packing_raises_bad_array(array):
    with pytest.raises(BadArray, match="cannot travel"):
        pack_arrays([array])


def test_when_zero_dim_and_empty_arrays_travel_then_shapes_survive():
    got = _round_trip({"s": np.array(3.5), "e": np.zeros((0, 4), np.uint8)})
    assert got["s"].shape == ()
    assert got["s"] == 3.5
    assert got["e"].shape == (0, 4)


def test_when_bool_frame_holds_a_byte_other_than_0_or_1_then_bad_array():
    ref = ArrayRef(name="mask", dtype="|b1", shape=[3], frame=0)
    with pytest.raises(BadArray, match="0/1"):
        unpack_array(ref, [b"\x00\x01\x02"])
    assert unpack_array(ref, [b"\x00\x01\x01"]).tolist() == [False, True, True]


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        (ArrayRef(name="a", dtype="|O", shape=[1], frame=0), "not allowed"),
        (ArrayRef(name="a", dtype="<u2", shape=[-1, -4], frame=0), "negative"),
        (ArrayRef(name="a", dtype="|u1", shape=[1] * 7 + [4], frame=0), "dims"),
        (ArrayRef(name="a", dtype="|u1", shape=[4], frame=1), "out of range"),
        (ArrayRef(name="a", dtype="|u1", shape=[4], frame=-1), "out of range"),
        (ArrayRef(name="a", dtype="<f8", shape=[4], frame=0), "needs 32 bytes"),
        (ArrayRef(name="a", dtype="<f8", shape=[0, 2**62], frame=0), "absurdly"),
        (ArrayRef(name="a", dtype="|u1", shape=[2**32, 2**32, 0], frame=0), "absurdly"),
    ],
)
def test_when_ref_does_not_fit_its_buffers_then_unpack_raises_bad_array(ref, match):
    with pytest.raises(BadArray, match=match):
        unpack_array(ref, [b"\x00" * 4])


def test_when_two_refs_share_a_name_then_unpack_arrays_refuses():
    refs, buffers = pack_arrays([np.zeros(2), np.ones(2)])
    same = [
        refs[0],
        ArrayRef(name="0", dtype=refs[1].dtype, shape=refs[1].shape, frame=1),
    ]
    with pytest.raises(BadArray, match="two arrays"):
        unpack_arrays(same, buffers)


def test_when_one_packer_serves_several_fields_then_frame_indices_run_on():
    packer = ArrayPacker()
    first = packer.add_all({"a": np.zeros(2), "b": np.zeros(3)})
    second = packer.add("c", np.zeros(4, np.uint8))
    assert [r.frame for r in first] == [0, 1]
    assert second.frame == 2
    assert [b.nbytes for b in packer.buffers] == [16, 24, 4]
