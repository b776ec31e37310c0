"""Arrays as raw frames: packing them zero-copy, checking refs, viewing them back.

Rules:

- Only plain numeric dtypes travel (``ALLOWED_DTYPES``), little-endian or
  single-byte, never object, string, structured or datetime: the receiver
  views bytes with ``np.frombuffer`` and never unpickles.
- A frame holds exactly one C-contiguous array: ``itemsize * prod(shape)``
  equals the frame length, byte for byte.
- ``ArrayRef.frame`` indexes the buffers after the header (0 = first buffer).
  Several refs may share a frame only if they agree on its size; a frame no
  ref names is allowed (a newer peer may reference it from a field we skip).
- Sending is zero-copy for C-contiguous little-endian arrays; anything else
  is copied once into that form. Receiving is always zero-copy and read-only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import msgspec
import numpy as np

from openhcs_nb.protocol.errors import BadArray
from openhcs_nb.protocol.records import ArrayRef

#: dtype strings (``np.dtype(...).str``) an ArrayRef may name.
ALLOWED_DTYPES: frozenset[str] = frozenset(
    {
        "|b1",
        "|u1",
        "|i1",
        "<u2",
        "<i2",
        "<u4",
        "<i4",
        "<u8",
        "<i8",
        "<f2",
        "<f4",
        "<f8",
    }
)

BufferLike = bytes | bytearray | memoryview

#: Bound on ``itemsize * prod(non-zero dims)``, so even an empty array's shape
#: stays one numpy can build (its sizes must fit a signed 64-bit integer).
MAX_EXTENT_BYTES = 1 << 48


def wire_dtype(dtype: np.dtype) -> np.dtype:
    """The whitelisted dtype an array of ``dtype`` travels as (byte order fixed).

    Raises
    ------
    BadArray
        The dtype has no plain numeric wire form (object, str, complex, ...).
    """
    little = dtype.newbyteorder("<")
    if little.str in ALLOWED_DTYPES:
        return little
    raise BadArray(
        f"dtype {dtype!s} ({dtype.str}) cannot travel; allowed: "
        f"{', '.join(sorted(ALLOWED_DTYPES))}"
    )


def as_byte_view(buffer: object) -> memoryview:
    """A flat, unsigned-byte memoryview of ``buffer`` without copying.

    Raises
    ------
    TypeError
        ``buffer`` does not support the buffer protocol.
    ValueError
        ``buffer`` is not C-contiguous.
    """
    if isinstance(buffer, np.ndarray):
        if not buffer.flags.c_contiguous:
            raise ValueError("array buffer is not C-contiguous")
        return memoryview(buffer.reshape(-1).view(np.uint8))
    view = memoryview(buffer)  # type: ignore[arg-type]
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B")


class ArrayPacker:
    """Collects arrays for one message, handing out the ArrayRefs that name them.

    Use one packer per message so frame indices start at 0 and run on across
    every field that holds refs (e.g. the previews of many events in a fetch).
    """

    def __init__(self) -> None:
        self._buffers: list[memoryview] = []

    @property
    def buffers(self) -> list[memoryview]:
        """The frames to pass to ``encode``, in ref order."""
        return list(self._buffers)

    def add(self, name: str, array: np.ndarray) -> ArrayRef:
        """Append ``array`` as the next frame and return its ref.

        Raises
        ------
        BadArray
            The array's dtype cannot travel.
        """
        arr = np.asarray(array)
        dtype = wire_dtype(arr.dtype)
        if dtype != arr.dtype or not arr.flags.c_contiguous:
            arr = np.array(arr, dtype=dtype, order="C", copy=True)
        self._buffers.append(as_byte_view(arr))
        frame = len(self._buffers) - 1
        return ArrayRef(name=name, dtype=dtype.str, shape=list(arr.shape), frame=frame)

    def add_all(
        self, arrays: Mapping[str, np.ndarray] | Sequence[np.ndarray]
    ) -> list[ArrayRef]:
        """Add a named mapping, or a sequence named ``"0"``, ``"1"``, ...

        Raises
        ------
        BadArray
            An array's dtype cannot travel.
        """
        items = (
            arrays.items()
            if isinstance(arrays, Mapping)
            else ((str(i), a) for i, a in enumerate(arrays))
        )
        return [self.add(name, arr) for name, arr in items]


def pack_arrays(
    arrays: Mapping[str, np.ndarray] | Sequence[np.ndarray],
) -> tuple[list[ArrayRef], list[memoryview]]:
    """Refs to embed in a message, and the buffers to pass to ``encode`` with it.

    Raises
    ------
    BadArray
        An array's dtype cannot travel.
    """
    packer = ArrayPacker()
    refs = packer.add_all(arrays)
    return refs, packer.buffers


def iter_refs(obj: object) -> Iterator[ArrayRef]:
    """Every ArrayRef inside a message: in struct fields and lists, not dicts."""
    if isinstance(obj, ArrayRef):
        yield obj
    elif isinstance(obj, msgspec.Struct):
        for name in obj.__struct_fields__:
            value = getattr(obj, name)
            if isinstance(value, (msgspec.Struct, list)):
                yield from iter_refs(value)
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (msgspec.Struct, list)):
                yield from iter_refs(item)


def ref_nbytes(ref: ArrayRef, max_ndim: int) -> int:
    """The exact frame length ``ref`` needs, once its dtype and shape are checked.

    Raises
    ------
    BadArray
        The dtype is not allowed, or the shape has too many or negative dims.
    """
    where = f"array {ref.name!r}"
    if ref.dtype not in ALLOWED_DTYPES:
        raise BadArray(f"{where}: dtype {ref.dtype!r} is not allowed")
    if len(ref.shape) > max_ndim:
        raise BadArray(f"{where}: {len(ref.shape)} dims, at most {max_ndim} allowed")
    if any(dim < 0 for dim in ref.shape):
        raise BadArray(f"{where}: negative dimension in shape {ref.shape}")
    itemsize = np.dtype(ref.dtype).itemsize
    # An empty array may still name absurd dims numpy cannot even reshape to.
    if itemsize * math.prod(dim for dim in ref.shape if dim) > MAX_EXTENT_BYTES:
        raise BadArray(f"{where}: shape {ref.shape} is absurdly large")
    return itemsize * math.prod(ref.shape)


def _frame_out_of_range(ref: ArrayRef, n_frames: int) -> BadArray:
    return BadArray(
        f"array {ref.name!r}: frame {ref.frame} out of range (the message has "
        f"{n_frames} array frames)"
    )


def _wrong_size(ref: ArrayRef, expected: int, got: int) -> BadArray:
    return BadArray(
        f"array {ref.name!r}: dtype {ref.dtype} shape {ref.shape} needs "
        f"{expected} bytes, frame {ref.frame} has {got}"
    )


def check_ref(ref: ArrayRef, lengths: Sequence[int], max_ndim: int) -> None:
    """Refuse a ref whose dtype, shape or frame does not fit the frame lengths.

    Raises
    ------
    BadArray
        Refused dtype, too many or negative dims, frame out of range, or
        ``itemsize * prod(shape)`` not equal to the frame's length.
    """
    expected = ref_nbytes(ref, max_ndim)
    if not 0 <= ref.frame < len(lengths):
        raise _frame_out_of_range(ref, len(lengths))
    if expected != lengths[ref.frame]:
        raise _wrong_size(ref, expected, lengths[ref.frame])


def unpack_array(
    ref: ArrayRef, buffers: Sequence[BufferLike], *, max_ndim: int = 6
) -> np.ndarray:
    """A read-only view of the array ``ref`` names; no copy is made.

    Raises
    ------
    BadArray
        The ref does not fit the buffers, or a bool frame holds a byte other
        than 0 or 1 (numpy's bool must be exactly 0 or 1).
    """
    expected = ref_nbytes(ref, max_ndim)
    if not 0 <= ref.frame < len(buffers):
        raise _frame_out_of_range(ref, len(buffers))
    view = as_byte_view(buffers[ref.frame])
    if view.nbytes != expected:
        raise _wrong_size(ref, expected, view.nbytes)
    if ref.dtype == "|b1" and expected and np.frombuffer(view, np.uint8).max() > 1:
        raise BadArray(f"array {ref.name!r}: bool frame holds bytes other than 0/1")
    arr = np.frombuffer(view, dtype=np.dtype(ref.dtype)).reshape(ref.shape)
    arr.flags.writeable = False
    return arr


def unpack_arrays(
    refs: Sequence[ArrayRef], buffers: Sequence[BufferLike], *, max_ndim: int = 6
) -> dict[str, np.ndarray]:
    """``{ref.name: array}`` for refs with distinct names, each a read-only view.

    Raises
    ------
    BadArray
        Two refs share a name, or a ref does not fit the buffers.
    """
    out: dict[str, np.ndarray] = {}
    for ref in refs:
        if ref.name in out:
            raise BadArray(f"two arrays are named {ref.name!r}")
        out[ref.name] = unpack_array(ref, buffers, max_ndim=max_ndim)
    return out
