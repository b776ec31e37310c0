"""Notice a server that has gone, so live runs don't read "running" for ever.

ZeroMQ hides a dead peer: requests wait in the outbox, the SUB socket is
silent, and a handle would say ``running 23/24`` until the user gives up.
While any execution is followed, the I/O thread therefore asks the server a
cheap question (``Status`` of one live execution) every ``interval`` seconds:

- any reply, an error reply included, proves the server is there: the miss
  count goes back to 0;
- no reply within ``interval`` seconds (or a link that drops under the
  question) is one miss; ``misses`` misses in a row end every followed
  execution with :class:`~openhcs_nb.client.errors.ServerLost`, naming the
  address, the silence and how to reattach;
- a server restarted on the same address within that window answers the next
  question (ZeroMQ reconnects, and a forgotten session is renewed by
  ``_requests``), so nothing is marked lost;
- with nothing followed no question is sent, and the count starts afresh.

Everything here runs on the I/O thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from openhcs_nb.client.errors import ConnectionClosed, ServerLost, ServerUnavailable
from openhcs_nb.protocol import Status

if TYPE_CHECKING:
    from openhcs_nb.client._transport import Transport

#: Default seconds between two questions, and misses before "server lost".
DEFAULT_INTERVAL = 5.0
DEFAULT_MISSES = 3


class Heartbeat:
    """Counts unanswered questions to one server; bind a transport before use.

    ``live()`` names the executions followed now; ``on_lost(silence)`` is
    called once the server has been silent for ``misses`` questions in a row
    (``silence``: seconds since its last answer, or since following began).
    """

    def __init__(
        self,
        *,
        live: Callable[[], Sequence[str]],
        on_lost: Callable[[float], None],
        interval: float = DEFAULT_INTERVAL,
        misses: int = DEFAULT_MISSES,
    ) -> None:
        if interval <= 0 or misses < 1:
            msg = f"heartbeat needs interval > 0 and misses >= 1: {interval}, {misses}"
            raise ValueError(msg)
        self.interval = interval
        self.misses = misses
        self._live = live
        self._on_lost = on_lost
        self._transport: Transport | None = None
        self._missed = 0
        self._asking = False
        self._next_at: float | None = None  # None: nothing followed
        self._last_answer = 0.0

    def bind(self, transport: Transport) -> None:
        """Ask through ``transport``."""
        self._transport = transport

    @property
    def missed(self) -> int:
        """Questions unanswered in a row so far."""
        return self._missed

    def on_tick(self, now: float) -> None:
        """Ask again when due, while some execution is followed."""
        live = self._live()
        if not live:
            self._next_at, self._missed = None, 0
            return
        if self._next_at is None:  # following began: the clock starts now
            self._next_at, self._last_answer = now, now
        if self._asking or now < self._next_at:
            return
        assert self._transport is not None
        self._next_at = now + self.interval
        self._asking = True
        self._transport.send(
            Status(rid=0, execution_id=live[0]),
            (),
            self.interval,
            self._answered,
            self._not_answered,
        )

    def _answered(self, _reply: Any, _buffers: Sequence[Any]) -> None:
        self._asking = False
        self._missed = 0
        self._last_answer = time.monotonic()

    def _not_answered(self, error: BaseException) -> None:
        self._asking = False
        if isinstance(error, ConnectionClosed):
            return  # closed here, not gone there
        if not isinstance(error, ServerUnavailable):  # a refusal is an answer
            self._answered(None, ())
            return
        self._missed += 1
        if self._missed >= self.misses and self._live():
            self._missed = 0
            self._next_at = None
            self._on_lost(time.monotonic() - self._last_answer)


def lost_error(address: str, silence: float, execution_id: str) -> ServerLost:
    """The one-line error a handle ends with when its server is lost."""
    return ServerLost(
        f"server lost: {address} did not answer for {silence:.0f} s; "
        f"once it is back, reattach with conn.attach({execution_id!r}) "
        f"(or openhcs_nb.connect({address!r}).attach({execution_id!r}))",
        details={"execution_id": execution_id},
    )
