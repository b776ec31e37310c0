"""Pyramid levels and tiles of one field, for a zoomable well view.

A viewer asks for the tiles it shows instead of a whole full-resolution field,
so zooming in stays quick on a large image. These functions are bound as
methods: ``Connection.pyramid`` / ``Connection.tile`` read any plate the user
may read (raw channels); ``Execution.pyramid`` / ``Execution.tile`` read a
finished well of that execution (raw channels and labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from openhcs_nb.protocol import unpack_array
from openhcs_nb.protocol.messages import Pyramid, Tile

if TYPE_CHECKING:
    from openhcs_nb.client.connection import Connection
    from openhcs_nb.client.execution import Execution

Levels = dict[str, list[tuple[int, int]]]


def _levels(reply: Any, _buffers: Sequence[Any]) -> Levels:
    return {
        name: [(int(h), int(w)) for h, w in sizes]
        for name, sizes in reply.levels.items()
    }


def _pixels(reply: Any, buffers: Sequence[Any]) -> np.ndarray:
    return np.array(unpack_array(reply.images[0], buffers))


def plate_pyramid(
    self: Connection,
    plate: str,
    well: str,
    field: int = 0,
    *,
    timeout: float | None = None,
) -> Levels:
    """``(height, width)`` of each level per plane (``image/<channel>``).

    Level 0 is full resolution; each level halves the one below.

    Raises
    ------
    RemoteUnknownPlate, RemoteError
        No such plate, well or field for this user.
    """
    msg = Pyramid(rid=0, well=well, site=field, plate=plate)
    return self._call(msg, timeout=timeout, then=_levels)


def plate_tile(
    self: Connection,
    plate: str,
    well: str,
    field: int,
    name: str,
    level: int,
    ty: int,
    tx: int,
    size: int = 256,
    *,
    timeout: float | None = None,
) -> np.ndarray:
    """Tile row ``ty``, column ``tx`` of the ``size`` grid at ``level``.

    Edge tiles are smaller. ``name`` is a plane of :func:`plate_pyramid`.

    Raises
    ------
    RemoteError
        Unknown plate, well, field or plane, or the level or tile is out of range.
    """
    msg = Tile(
        rid=0,
        plate=plate,
        well=well,
        site=field,
        name=name,
        level=level,
        ty=ty,
        tx=tx,
        size=size,
    )
    return self._call(msg, timeout=timeout, then=_pixels)


def execution_pyramid(
    self: Execution, well: str, field: int = 0, *, timeout: float | None = None
) -> Levels:
    """Level sizes per plane of a finished well: ``image/*`` and ``labels/*``.

    Raises
    ------
    RemoteError
        The well has no results yet, or the field is out of range.
    """
    msg = Pyramid(rid=0, well=well, site=field, execution_id=self.id)
    return self._connection._call(msg, timeout=timeout, then=_levels)


def execution_tile(
    self: Execution,
    well: str,
    field: int,
    name: str,
    level: int,
    ty: int,
    tx: int,
    size: int = 256,
    *,
    timeout: float | None = None,
) -> np.ndarray:
    """One tile of a finished well's plane (labels are subsampled, not averaged).

    Raises
    ------
    RemoteError
        No results for the well yet, or the plane, level or tile is out of range.
    """
    msg = Tile(
        rid=0,
        execution_id=self.id,
        well=well,
        site=field,
        name=name,
        level=level,
        ty=ty,
        tx=tx,
        size=size,
    )
    return self._connection._call(msg, timeout=timeout, then=_pixels)
