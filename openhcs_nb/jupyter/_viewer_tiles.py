"""Tiles of a well's image pyramid, served to the plate viewer on request.

The page asks through anywidget custom messages, never through state, so a
tile travels once and only while it is on screen:

- ``{"type": "pyramid", "id", "well", "field"}`` is answered with
  ``{"type": "pyramid", "id", "well", "field", "levels": {plane: [[h, w], ...]}}``
  (level 0 is full resolution; each next level is half the size);
- ``{"type": "tile", "id", "well", "field", "level", "ty", "tx"}`` with
  ``{"type": "tile", "id", ..., "meta": <pack_planes meta>}`` and one buffer
  holding every plane of that tile (so toggling a channel needs no refetch);
- ``{"type": "cancel", "ids": [...]}`` drops queued requests that went off
  screen (one already being read still replies; the page ignores it).

Errors come back as ``{"type": ..., "id", "error": "<one line>"}``. Requests
are read on at most ``max_in_flight`` worker threads, newest first: the
kernel never waits for a tile. Each well's pyramid is asked for once, and
the requests to the source are paced (``max_rate`` per second) so that a
fast pan stays inside the server's per-user request limit
(``[limits] requests_per_second``, 50 by default) instead of being refused.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

import numpy as np

from openhcs_nb.jupyter._images import pack_planes
from openhcs_nb.jupyter._viewer_fetchers import fetch_error

TILE = 256
DEFAULT_IN_FLIGHT = 4
DEFAULT_RATE = 30.0  # source calls per second, under the server's default 50

PYRAMID_TTL = 10.0  # seconds a well's pyramid is reused without asking again
Levels = dict[str, list[list[int]]]
#: Sends one reply to the page: (content, buffers).
Reply = Callable[[dict[str, Any], list[bytes]], None]


@runtime_checkable
class TileSource(Protocol):
    """Where tiles come from (``Execution``, a plate fetcher, an in-memory one)."""

    def pyramid(self, well: str, field: int) -> Mapping[str, list[tuple[int, int]]]:
        """``{plane_name: [(height, width) per level]}``, level 0 full size."""
        ...

    def tile(
        self,
        well: str,
        field: int,
        plane_name: str,
        level: int,
        ty: int,
        tx: int,
        size: int = TILE,
    ) -> np.ndarray:
        """Tile (ty, tx) of ``level``: ``size`` square, smaller at the edges."""
        ...


def tile_source_of(execution: Any) -> TileSource | None:
    """``execution`` itself when it can serve tiles (duck-typed), else None."""
    has = callable(getattr(execution, "tile", None))
    return execution if has and callable(getattr(execution, "pyramid", None)) else None


def tile_grid(shape: tuple[int, int], size: int = TILE) -> tuple[int, int]:
    """How many tile rows and columns cover a level of ``shape``."""
    height, width = shape
    return -(-int(height) // size), -(-int(width) // size)


class Pacer:
    """Spaces calls at least ``1 / rate`` seconds apart, across threads."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._gap = 1.0 / rate if rate > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        """Block until this call's slot (no wait when the rate is not reached)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._gap
        if slot > now:
            self._sleep(slot - now)


class TileServer:
    """Answers the page's pyramid and tile requests on worker threads."""

    def __init__(
        self,
        source: TileSource,
        reply: Reply,
        *,
        max_in_flight: int = DEFAULT_IN_FLIGHT,
        size: int = TILE,
        pacer: Pacer | None = None,
    ) -> None:
        self._source = source
        self._pacer = pacer or Pacer(DEFAULT_RATE)
        # (well, field) -> (when asked, levels); kept briefly, because a well
        # that is still running gains its labels planes when it finishes.
        self._pyramids: dict[tuple[str, int], tuple[float, Levels]] = {}
        self._reply = reply
        self._size = size
        self._lock = threading.Lock()
        self._asking = threading.Lock()
        self._queued: OrderedDict[Any, dict[str, Any]] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_in_flight, "openhcs-viewer-tiles")
        self._closed = False

    def handle(self, content: Mapping[str, Any]) -> bool:
        """Take one message from the page; False when it is not ours."""
        kind = content.get("type")
        if kind == "cancel":
            with self._lock:
                for request_id in content.get("ids", ()):
                    self._queued.pop(request_id, None)
            return True
        if kind not in ("pyramid", "tile"):
            return False
        with self._lock:
            if self._closed:
                return True
            self._queued[content.get("id")] = dict(content)
        self._pool.submit(self._next)
        return True

    def queued(self) -> list[Any]:
        """Ids of requests not yet being read (oldest first)."""
        with self._lock:
            return list(self._queued)

    def close(self) -> None:
        """Drop what is queued and stop the workers."""
        with self._lock:
            self._closed = True
            self._queued.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _next(self) -> None:
        """Read the newest queued request (the one the user looks at now)."""
        with self._lock:
            if not self._queued:
                return
            _, request = self._queued.popitem(last=True)
        head = {k: request.get(k) for k in ("type", "id", "well", "field")}
        try:
            content, buffers = self._answer(request)
        except Exception as exc:  # one line for the page, never a traceback
            content, buffers = {"error": fetch_error(exc)}, []
        self._reply({**head, **content}, buffers)

    def _answer(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        well, field = str(request["well"]), int(request["field"])
        levels = self._levels(well, field)
        if request["type"] == "pyramid":
            return {"levels": levels, "tile": self._size}, []
        level, ty, tx = int(request["level"]), int(request["ty"]), int(request["tx"])
        planes = {}
        for name, shapes in levels.items():
            if level < len(shapes):
                self._pacer.wait()
                planes[name] = self._source.tile(
                    well, field, name, level, ty, tx, self._size
                )
        if not planes:
            raise LookupError(f"{well} field {field} has no level {level}")
        data, meta = pack_planes(planes)
        return {"level": level, "ty": ty, "tx": tx, "meta": meta}, [data]

    def _levels(self, well: str, field: int) -> Levels:
        """The pyramid of (well, field), asked of the source once per burst."""
        key = (well, field)
        with self._asking:  # one thread asks; the others wait and reuse it
            now = time.monotonic()
            asked, known = self._pyramids.get(key, (-PYRAMID_TTL, None))
            if known is None or now - asked > PYRAMID_TTL:
                self._pacer.wait()
                known = {
                    str(name): [[int(h), int(w)] for h, w in shapes]
                    for name, shapes in self._source.pyramid(well, field).items()
                }
                self._pyramids[key] = (now, known)
        return known
