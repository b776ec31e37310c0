"""Tiles' own budget per user: a rate of tiles and a cap on unread tile bytes.

A viewer that pans asks for many tiles a second. Were they charged to the
user's command rate (``[limits] requests_per_second``), a fast pan could starve
that user's Status or Cancel. So a tile gives back the command token it was
charged on arrival and is charged to its own token bucket instead
(``[limits] tiles_per_second``, ``tile_burst``).

Tile replies are also the bulk of a viewer's bytes. A tile is refused while the
user's unread replies (over all their connections, as the outbox counts them)
already reach ``[limits] tile_bytes_in_flight``, which is kept below the
per-peer ``peer_send_budget_bytes``, so the other replies still have room.
Both refusals are typed, one line, and name the limit to change. A client
that ignores ``retry_after`` (refused more than ``tile_burst`` times in a
second) is no longer given its command token back, so the loop's flood guard
ends up dropping its commands unanswered, as for any other flood.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.server.errors import RateLimitedError
from openhcs_nb.server.rate_limit import RateLimiter

if TYPE_CHECKING:
    from openhcs_nb.server.peers import Peer


class TileRateLimitedError(RateLimitedError):
    """The user asked for tiles faster than ``[limits] tiles_per_second``.

    Only this tile is refused; the connection and the user's other commands go on.
    """

    def __init__(self, message: str, retry_after: str, *, flooding: bool) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.flooding = flooding


class TileBytesError(OpenHCSError):
    """The user's unread replies already reach ``[limits] tile_bytes_in_flight``.

    Only this tile is refused; it may be asked for again once the client reads.
    """

    code = "busy"


class TileBudget:
    """Admits or refuses one tile of a user (the server's loop thread only)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        bytes_in_flight: int,
        unread: Callable[[Peer], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``unread(peer)`` is the bytes of replies the peer's user has not read."""
        self.rate = rate
        self.bytes_in_flight = bytes_in_flight
        self._bucket = RateLimiter(rate, burst, clock)
        self._unread = unread

    def admit(self, user: str) -> None:
        """Spend one tile token of ``user``.

        A user refused more than ``tile_burst`` times within one second ignores
        ``retry_after``: that refusal says so (``flooding``), and the caller
        keeps the command token it was charged, so a flood meets the loop's
        own guard (unanswered past ``request_burst`` refusals).

        Raises
        ------
        TileRateLimitedError
            No token left; the reply says when the next one comes.
        """
        wait = self._bucket.take(user)
        if wait:
            raise TileRateLimitedError(
                f"user {user!r} asks for more than {self.rate:g} tiles per second "
                f"([limits] tiles_per_second); retry in {wait:.2f} s",
                retry_after=f"{wait:.3f}",
                flooding=self._bucket.flooding(user),
            )

    def check_bytes(self, peer: Peer, nbytes: int) -> None:
        """Refuse a tile of ``nbytes`` while the user's unread bytes are at the cap.

        A tile larger than the whole cap still goes when nothing is unread.

        Raises
        ------
        TileBytesError
            The user's unread replies would pass ``tile_bytes_in_flight``.
        """
        if self.bytes_in_flight <= 0:
            return
        held = self._unread(peer)
        if held and held + nbytes > self.bytes_in_flight:
            raise TileBytesError(
                f"user {peer.user!r} has {held / 2**20:.1f} MiB of replies unread "
                f"([limits] tile_bytes_in_flight = {self.bytes_in_flight}); "
                "read them, then ask for the tile again"
            )
