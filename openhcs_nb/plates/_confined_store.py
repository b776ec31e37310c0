"""A read-only zarr ``LocalStore`` whose every read goes through a Confinement.

zarr's local store opens chunk and metadata files by path, so a symlinked chunk
file, chunk folder or array folder would be followed anywhere. This store keeps
zarr's key-to-path mapping and byte-range handling but opens each file with
:meth:`Confinement.open`. Imported only once pixels are read (it needs zarr).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.core.buffer.core import default_buffer_prototype
from zarr.storage import LocalStore

from openhcs_nb.plates._containment import Confinement

_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class ConfinedStore(LocalStore):
    """Read-only local store rooted at a plate, confined to the plate roots."""

    def __init__(self, root: Path | str, *, confine: Confinement, ref: str) -> None:
        super().__init__(root, read_only=True)
        self.confine = confine
        self.ref = ref

    def with_read_only(self, read_only: bool = True) -> ConfinedStore:
        """Always read-only: a confined plate is never written."""
        return type(self)(self.root, confine=self.confine, ref=self.ref)

    def _read(
        self,
        key: str,
        prototype: BufferPrototype | None,
        byte_range: ByteRequest | None,
    ) -> Buffer | None:
        prototype = prototype or default_buffer_prototype()
        try:
            with self.confine.open(self.root / key, self.ref) as handle:
                return prototype.buffer.from_bytes(_slice(handle, byte_range))
        except _MISSING:
            return None

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """One key's bytes, read through the confinement."""
        self._ensure_open_sync()
        return self._read(key, prototype, byte_range)

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """One key's bytes, read through the confinement (in a thread)."""
        if not self._is_open:
            await self._open()
        return await asyncio.to_thread(self._read, key, prototype, byte_range)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Several byte ranges, each read through the confinement."""
        return list(
            await asyncio.gather(
                *(
                    asyncio.to_thread(self._read, key, prototype, byte_range)
                    for key, byte_range in key_ranges
                )
            )
        )


def _slice(handle: BinaryIO, byte_range: ByteRequest | None) -> bytes:
    """The bytes ``byte_range`` asks for, as zarr's own local store reads them."""
    if byte_range is None:
        return handle.read()
    size = handle.seek(0, io.SEEK_END)
    if isinstance(byte_range, RangeByteRequest):
        handle.seek(byte_range.start)
        return handle.read(byte_range.end - byte_range.start)
    if isinstance(byte_range, OffsetByteRequest):
        handle.seek(byte_range.offset)
    elif isinstance(byte_range, SuffixByteRequest):
        handle.seek(max(0, size - byte_range.suffix))
    else:
        raise TypeError(f"unexpected byte range {byte_range!r}")
    return handle.read()


def open_confined_array(root: Path, key: str, confine: Confinement, ref: str) -> Any:
    """The zarr array at ``key`` under the plate ``root``, read confined."""
    import zarr

    store = ConfinedStore(root, confine=confine, ref=ref)
    return zarr.open_array(store=store, path=key, mode="r")
