"""Audit of served tiles, summarised: one line per field and user per window.

A pan asks for dozens of tiles a second; one audit line each would bury
everything else in the log. So served tiles are counted per (user, execution
or plate, well, field) and written as one ``tile`` line with the count and
the bytes once ``window_s`` has passed since that summary's first tile (checked
at every Tile and Pyramid request), and every summary still open when the
server stops. Refused tiles are not summarised: the loop audits each one as it
audits any refused command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openhcs_nb.server._audit_trail import AuditTrail
    from openhcs_nb.server.peers import Peer

#: Seconds one summary line covers at most.
DEFAULT_WINDOW_S = 10.0

_Key = tuple[str, str | None, str, str, int]  # user, execution, plate, well, site


@dataclass
class _Summary:
    peer: Peer
    started: float
    tiles: int = 0
    nbytes: int = 0
    levels: set[int] | None = None


class TileAudit:
    """Counts served tiles and writes their summaries to the audit trail."""

    def __init__(
        self,
        trail: AuditTrail,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trail = trail
        self.window_s = window_s
        self._clock = clock
        self._open: dict[_Key, _Summary] = {}

    def served(
        self,
        peer: Peer,
        *,
        plate: str,
        execution_id: str | None,
        well: str,
        site: int,
        level: int,
        nbytes: int,
    ) -> None:
        """Count one served tile; write the summaries whose window has passed."""
        now = self._clock()
        key = (peer.user, execution_id, plate, well, site)
        summary = self._open.get(key)
        if summary is None:
            summary = self._open[key] = _Summary(peer, now, levels=set())
        summary.peer = peer
        summary.tiles += 1
        summary.nbytes += nbytes
        assert summary.levels is not None
        summary.levels.add(level)
        self.tick()

    def tick(self) -> None:
        """Write the summaries whose window has passed (any tile request calls it)."""
        now = self._clock()
        for key, summary in list(self._open.items()):
            if now - summary.started >= self.window_s:
                self._write(key, now)

    def flush(self) -> None:
        """Write every open summary now (the server is stopping)."""
        for key in list(self._open):
            self._write(key, self._clock())

    def _write(self, key: _Key, now: float) -> None:
        summary = self._open.pop(key)
        _user, execution_id, plate, well, site = key
        self.trail.record(
            summary.peer,
            "tile",
            "ok",
            plate=plate,
            execution_id=execution_id,
            detail={
                "well": well,
                "site": site,
                "tiles": summary.tiles,
                "bytes": summary.nbytes,
                "levels": sorted(summary.levels or ()),
                "seconds": round(now - summary.started, 3),
            },
        )
