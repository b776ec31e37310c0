"""A byte budget for the preview images a kernel keeps.

Every finished well streams a few small images; a 1536-well plate's worth is
hundreds of MiB, far more than a notebook needs at once. The client keeps
summaries, statuses and errors of every well (they are small) and only the
previews of the most recent wells, in a :class:`PreviewCache`:

- ``put`` makes an entry the newest; the oldest entries are dropped first,
  until the kept bytes fit ``budget_bytes`` again.
- An entry larger than the whole budget is not kept at all, so the kept bytes
  never exceed the budget (a budget of 0 keeps nothing).
- Bytes are the arrays' ``nbytes``: the memory they pin in the kernel.
- Reading does not refresh an entry: eviction follows arrival, so which wells
  are kept is predictable from the order they finished.
- Thread-safe: the I/O thread puts while any thread reads.

A dropped preview is not lost: the server stores every event, so the
execution fetches it again on request (``Execution.previews``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

#: Bytes of previews a connection (or a plate viewer) keeps by default:
#: about 125 wells of two 256² uint16 channels plus a 256² int32 label image.
DEFAULT_PREVIEW_BUDGET = 64 * 2**20


def previews_nbytes(previews: Mapping[str, np.ndarray]) -> int:
    """Bytes the arrays of ``previews`` hold."""
    return sum(int(np.asarray(array).nbytes) for array in previews.values())


class PreviewCache(Generic[K]):
    """Previews of the most recently put keys, within ``budget_bytes``."""

    def __init__(self, budget_bytes: int = DEFAULT_PREVIEW_BUDGET) -> None:
        """Keep at most ``budget_bytes`` of preview arrays.

        Raises
        ------
        ValueError
            ``budget_bytes`` is negative.
        """
        if budget_bytes < 0:
            raise ValueError(f"preview budget must be >= 0 bytes, not {budget_bytes}")
        self._budget = int(budget_bytes)
        self._entries: OrderedDict[K, tuple[dict[str, np.ndarray], int]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()

    @property
    def budget_bytes(self) -> int:
        """The most bytes of previews kept at once."""
        return self._budget

    @property
    def nbytes(self) -> int:
        """Bytes of previews kept now (never more than ``budget_bytes``)."""
        with self._lock:
            return self._nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def keys(self) -> list[K]:
        """The kept keys, oldest (next to be dropped) first."""
        with self._lock:
            return list(self._entries)

    def put(self, key: K, previews: Mapping[str, np.ndarray]) -> bool:
        """Keep ``previews`` as the newest entry; False when it cannot fit at all.

        Older entries are dropped, oldest first, to make room. An empty
        mapping is not kept (there is nothing to hold).
        """
        size = previews_nbytes(previews)
        with self._lock:
            self._pop(key)
            if not previews or size > self._budget:
                return False
            self._entries[key] = (dict(previews), size)
            self._nbytes += size
            while self._nbytes > self._budget:
                self._pop(next(iter(self._entries)))
            return True

    def get(self, key: K) -> dict[str, np.ndarray] | None:
        """A new dict of the kept arrays of ``key``, or None when not kept."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else dict(entry[0])

    def discard(self, key: K) -> None:
        """Forget ``key`` (nothing happens when it is not kept)."""
        with self._lock:
            self._pop(key)

    def discard_if(self, test: Callable[[K], bool]) -> int:
        """Forget every key for which ``test(key)`` holds; returns how many."""
        with self._lock:
            doomed = [key for key in self._entries if test(key)]
            for key in doomed:
                self._pop(key)
            return len(doomed)

    def _pop(self, key: K) -> None:
        """Drop ``key`` and its bytes (called holding the lock)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._nbytes -= entry[1]

    def __repr__(self) -> str:
        with self._lock:
            count, kept = len(self._entries), self._nbytes
        return (
            f"<PreviewCache {count} entries, {kept / 2**20:.1f} of "
            f"{self._budget / 2**20:.1f} MiB>"
        )
