"""Tiles of one field for a zoomable viewer: answers Pyramid and Tile.

A viewer shows a field at a zoom level and asks only for the tiles in view,
so a click does not wait for the whole full-resolution field. Level 0 is full
size; each level above halves both sides (rounding up) until the longer side
fits one 256-pixel tile. Images are downsampled by block mean; labels by taking
every k-th pixel, because averaging object ids makes ids that do not exist.

Level-0 image tiles of an OME-Zarr plate read just the tile's region. A
coarser level is read from the plate where it stores that level
(:mod:`._stored_levels`), else (ImageXpress, OMERO, odd sizes) computed from
the full plane; either way the level's plane is kept in a small byte-budgeted
cache, as are the labels of a finished well (its store holds level 0 only).

Tiles have their own per-user budget (:mod:`._tile_budget`): they do not spend
the user's command rate, and served tiles are audited as summaries
(:mod:`._tile_audit`), refused ones one by one.

Permissions are Fetch's: an ``execution_id`` must be the caller's own
(:meth:`Handlers.own`), and a ``plate`` must be one the caller may open.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from openhcs_nb.errors import OpenHCSError, PlateError
from openhcs_nb.plates.ome_zarr import OmeZarrPlate
from openhcs_nb.protocol import ArrayPacker
from openhcs_nb.protocol.messages import Pyramid, PyramidReply, Tile, TileReply
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server._stored_levels import StoredLevels
from openhcs_nb.server._tile_audit import TileAudit
from openhcs_nb.server._tile_budget import TileBudget, TileRateLimitedError
from openhcs_nb.server.rate_limit import rate_bucket

if TYPE_CHECKING:
    from openhcs_nb.plates.model import Plate
    from openhcs_nb.server.handlers import Handlers
    from openhcs_nb.server.peers import Peer

Out = tuple[Any, list[Any]]

#: Tiles larger than this are refused: one reply stays a few MiB.
MAX_TILE_SIZE = 1024
#: Levels stop once the longer side is at most this (a thumbnail).
TOP_LEVEL_SIDE = 64
#: Bytes of downsampled planes and labels kept between requests.
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


class TileRequestError(OpenHCSError, ValueError):
    """The Tile or Pyramid request itself is not valid."""

    code = "malformed"


def level_shapes(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """``(height, width)`` per level: halve (rounding up) down to a thumbnail."""
    h, w = shape
    levels = [(h, w)]
    while max(h, w) > TOP_LEVEL_SIDE:
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        levels.append((h, w))
    return levels


def block_mean(plane: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block (edge blocks: of what is there)."""
    if factor == 1:
        return plane
    rows = np.arange(0, plane.shape[0], factor)
    cols = np.arange(0, plane.shape[1], factor)
    sums = np.add.reduceat(np.add.reduceat(plane.astype(np.float64), rows, 0), cols, 1)
    counts = np.outer(
        np.diff(np.append(rows, plane.shape[0])),
        np.diff(np.append(cols, plane.shape[1])),
    )
    mean = sums / counts
    if np.issubdtype(plane.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(plane.dtype)


def subsample(labels: np.ndarray, factor: int) -> np.ndarray:
    """Every ``factor``-th pixel of a labels plane: ids stay ids."""
    return labels[::factor, ::factor]


def _nbytes(value: np.ndarray | dict[str, np.ndarray]) -> int:
    if isinstance(value, dict):
        return sum(a.nbytes for a in value.values())
    return value.nbytes


class _ByteCache:
    """Least-recently-used arrays (or dicts of them) under a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """The value under ``key``, made (and kept if it fits) when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = make()
        size = _nbytes(value)
        with self._lock:
            if key not in self._items and size <= self.budget:
                self._items[key] = (value, size)
                self._bytes += size
                while self._bytes > self.budget:
                    _, (_old, old_size) = self._items.popitem(last=False)
                    self._bytes -= old_size
        return value


class _Field:
    """The planes of one requested field, and how to read each."""

    def __init__(self, source: Any, plate: Plate, well: str, site: int) -> None:
        self.source = source  # cache key part: ("plate", ref) or ("exec", id)
        self.plate = plate
        self.well = well
        self.site = site
        self.labels: Callable[[], dict[str, np.ndarray]] | None = None

    def names(self) -> list[str]:
        images = [f"image/{c}" for c in self.plate.channels]
        labels = [f"labels/{n}" for n in self.labels()] if self.labels else []
        return images + labels


class TileServer:
    """Answers Pyramid and Tile for the handlers (loop thread)."""

    def __init__(self, handlers: Handlers, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.h = handlers
        self._cache = _ByteCache(cache_bytes)
        self._stored = StoredLevels()
        limits = handlers.config.limits
        self.budget = TileBudget(
            limits.tiles_per_second,
            limits.tile_burst,
            limits.tile_bytes_in_flight,
            self._unread,
        )
        self.audit = TileAudit(handlers.audit, handlers.config.audit.tile_summary_s)

    def close(self) -> None:
        """Write the tile summaries still open (the server is stopping)."""
        self.audit.flush()

    def _unread(self, peer: Peer) -> int:
        """Reply bytes the outbox holds for this connection and the user's others."""
        server = self.h.server
        ids = {p.routing_id for p in server.peers.of_users([peer.user])}
        return sum(server.outbox.held(i) for i in ids | {peer.routing_id})

    def _charged_bucket(self, peer: Peer) -> str:
        """The command bucket the loop charged for this message (before acting)."""
        if peer.via is not None:  # a front end acting for an OMERO user
            peer = dataclasses.replace(peer, user=peer.via, via=None)
        return rate_bucket(peer, self.h.config.web.frontends)

    def pyramid(self, msg: Pyramid, peer: Peer) -> Out:
        """Answer Pyramid: every plane's level sizes."""
        self.audit.tick()
        field = self._field(msg, peer, "pyramid")
        levels = [list(s) for s in level_shapes(field.plate.shape)]
        return PyramidReply(
            rid=msg.rid, levels={name: levels for name in field.names()}
        ), []

    def tile(self, msg: Tile, peer: Peer) -> Out:
        """Answer Tile: the pixels of one tile, within the user's tile budget.

        Raises
        ------
        TileRateLimitedError, TileBytesError
            Over ``tiles_per_second`` or ``tile_bytes_in_flight``: this tile only.
        """
        charged = self._charged_bucket(peer)
        try:
            self.budget.admit(peer.user)
        except TileRateLimitedError as exc:
            if not exc.flooding:  # a flood keeps its command token (see admit)
                self.h.server.rate.refund(charged)
            raise
        self.h.server.rate.refund(charged)  # charged to the tile bucket instead
        if not 1 <= msg.size <= MAX_TILE_SIZE:
            raise TileRequestError(
                f"tile size {msg.size} is out of range: ask for 1..{MAX_TILE_SIZE}"
            )
        field = self._field(msg, peer, "tile")
        levels = level_shapes(field.plate.shape)
        if not 0 <= msg.level < len(levels):
            raise PlateError(
                f"level {msg.level} is out of range: this field has levels "
                f"0..{len(levels) - 1}"
            )
        h, w = levels[msg.level]
        rows, cols = math.ceil(h / msg.size), math.ceil(w / msg.size)
        if not (0 <= msg.ty < rows and 0 <= msg.tx < cols):
            raise PlateError(
                f"tile ({msg.ty}, {msg.tx}) is out of range: level {msg.level} has "
                f"{rows} x {cols} tiles of {msg.size}"
            )
        ys = slice(msg.ty * msg.size, min(h, (msg.ty + 1) * msg.size))
        xs = slice(msg.tx * msg.size, min(w, (msg.tx + 1) * msg.size))
        area = (ys.stop - ys.start) * (xs.stop - xs.start)
        self.budget.check_bytes(peer, area * field.plate.dtype.itemsize)
        pixels = self._read(field, msg.name, levels, msg.level, ys, xs)
        packer = ArrayPacker()
        ref = packer.add(msg.name, pixels)
        self.audit.served(
            peer,
            plate=field.plate.ref,
            execution_id=msg.execution_id,
            well=field.well,
            site=field.site,
            level=msg.level,
            nbytes=pixels.nbytes,
        )
        return TileReply(rid=msg.rid, images=[ref]), packer.buffers

    # -- where the pixels come from ---------------------------------------------

    def _field(self, msg: Pyramid | Tile, peer: Peer, action: str) -> _Field:
        if (msg.execution_id is None) == (msg.plate is None):
            raise TileRequestError(
                "name exactly one of execution_id (a finished well's results) "
                "or plate (raw channels)"
            )
        if msg.execution_id is not None:
            record = self.h.own(msg.execution_id, peer, action)
            plate = self.h.work.open_plate(record.plate, peer)
            source: tuple[str, str] = ("exec", record.id)
        else:
            assert msg.plate is not None
            plate = self.h.work.open_plate(msg.plate, peer)
            source = ("plate", plate.ref)
        well = plate.check_well(msg.well)
        if not 0 <= msg.site < plate.layout.fields:
            raise PlateError(
                f"well {well} has no field {msg.site} "
                f"(fields 0..{plate.layout.fields - 1})"
            )
        field = _Field(source, plate, well, msg.site)
        if msg.execution_id is not None:
            store = ResultsStore(self.h.results_root / source[1])
            key = (*source, well, msg.site, "labels")

            def labels() -> dict[str, np.ndarray]:
                return self._labels(key, store, well, msg.site)

            labels()  # an unfinished well is refused here, before any pixels
            field.labels = labels
        if action != "tile":  # served tiles are summarised by TileAudit
            self.h.audit.record(
                peer, action, "ok", plate=plate.ref, execution_id=msg.execution_id
            )
        return field

    def _labels(
        self, key: tuple[Any, ...], store: ResultsStore, well: str, site: int
    ) -> dict[str, np.ndarray]:
        return self._cache.get(key, lambda: store.read_labels(well, site))

    def _read(
        self,
        field: _Field,
        name: str,
        shapes: list[tuple[int, int]],
        level: int,
        ys: slice,
        xs: slice,
    ) -> np.ndarray:
        kind, _, plane = name.partition("/")
        factor = 2**level
        if kind == "labels" and field.labels is not None:
            sets = field.labels()
            if plane in sets:  # a strided view of the cached level 0: no copy
                return subsample(sets[plane], factor)[ys, xs]
        if kind == "image" and plane in field.plate.channels:
            channel = field.plate.channels.index(plane)
            key = ("plate", field.plate.ref, field.well, field.site, name, level)
            if level == 0:
                return read_region(field.plate, field.well, field.site, channel, ys, xs)

            def make() -> np.ndarray:
                stored = self._stored.plane(
                    field.plate, field.well, field.site, channel, level, shapes
                )
                if stored is not None:  # the plate's own level: one small read
                    return stored
                full = field.plate.read_image(field.well, field.site, channel)
                return block_mean(full, factor)

            return self._cache.get(key, make)[ys, xs]
        raise PlateError(
            f"no plane {name!r} here: ask for one of {', '.join(field.names())}"
        )


def read_region(
    plate: Plate, well: str, site: int, channel: int, ys: slice, xs: slice
) -> np.ndarray:
    """A level-0 region of one plane, read alone where the store allows it."""
    if isinstance(plate, OmeZarrPlate):
        array, axes = plate._field(well, site)  # the plate's cached zarr array
        index = tuple(
            ys if a == "y" else xs if a == "x" else channel if a == "c" else 0
            for a in axes
        )
        return np.asarray(array[index])
    return plate.read_image(well, site, channel)[ys, xs]
