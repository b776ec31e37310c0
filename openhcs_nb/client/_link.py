"""The plumbing under a :class:`~openhcs_nb.client.connection.Connection`.

A :class:`ServerLink` builds and wires the parts that live on the I/O thread:
the sockets (``_transport``), the followed streams (``_streams``) and the
heartbeat (``_heartbeat``). The connection above it only speaks commands.

Rules:

- The caller's thread only waits on futures, with a timeout, so a notebook
  never hangs on a server that is gone (:meth:`ServerLink.call`).
- The handshake waits at most ``link_timeout`` for the command link to come
  up (a TCP connection and a ZMTP/CurveZMQ handshake) before it says Hello:
  a dead port or a wrong key fails in seconds with a one-line hint.
- Link and tick notices fan out to the stream layer and the heartbeat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from typing import TYPE_CHECKING, Any

from openhcs_nb.client._commands import check_hello, pub_address
from openhcs_nb.client._heartbeat import Heartbeat
from openhcs_nb.client._streams import StreamHub
from openhcs_nb.client.errors import RemoteTimeout, ServerUnavailable
from openhcs_nb.errors import OptionalDependencyError

if TYPE_CHECKING:
    from openhcs_nb.client._keys import CurveKeys
    from openhcs_nb.client._transport import Transport
    from openhcs_nb.protocol import Hello, HelloReply

log = logging.getLogger("openhcs_nb.client")
#: Seconds a backfill fetch may take before it is sent again.
FETCH_TIMEOUT = 5.0


def transport_class() -> type[Transport]:
    """The socket layer, imported late: pyzmq is an optional dependency.

    Raises
    ------
    OptionalDependencyError
        pyzmq is not installed.
    """
    try:
        from openhcs_nb.client._transport import Transport
    except ImportError as exc:
        raise OptionalDependencyError(
            "connecting to an openhcs server", "jupyter", "pyzmq"
        ) from exc
    return Transport


class ServerLink:
    """Sockets, streams and heartbeat of one connection, wired together."""

    def __init__(
        self,
        address: str,
        keys: CurveKeys | None,
        hello: Hello,
        *,
        timeout: float,
        quiet_after: float,
        heartbeat: tuple[float, int],
        on_lost: Callable[[float], None],
    ) -> None:
        """Wire the parts; ``heartbeat`` is ``(interval, misses)``.

        ``on_lost(silence)`` is called on the I/O thread once the server
        stopped answering.
        """
        self.address = address
        self.timeout = timeout
        self._linked = threading.Event()  # the command link came up once
        self.hub = StreamHub(
            quiet_after=quiet_after, timeout=min(timeout, FETCH_TIMEOUT)
        )
        interval, misses = heartbeat
        self.heartbeat = Heartbeat(
            live=lambda: self.hub.followed,
            on_lost=on_lost,
            interval=interval,
            misses=misses,
        )
        self.transport = transport_class()(
            address,
            keys,
            on_event=self.hub.on_event,
            on_tick=self._on_tick,
            on_link=self._on_link,
        )
        self.hub.bind(self.transport)
        self.heartbeat.bind(self.transport)
        self.transport.requests.hello = hello

    def wait_linked(self, link_timeout: float, hint: str) -> None:
        """Block until the command link is up.

        Raises
        ------
        ServerUnavailable
            Nothing answered within ``link_timeout`` seconds; ``hint`` ends
            the message (what to check).
        """
        if not self._linked.wait(link_timeout):
            raise ServerUnavailable(
                f"no openhcs server answers at {self.address} "
                f"(nothing after {link_timeout:g} s): {hint}"
            )

    def call(
        self,
        message: Any,
        *,
        timeout: float | None = None,
        then: Callable[[Any, Sequence[Any]], Any] | None = None,
    ) -> Any:
        """Send ``message`` and wait for ``then(reply, buffers)`` (or the reply).

        Raises
        ------
        RemoteError
            The server refused, or did not answer (``ServerUnavailable``,
            ``RemoteTimeout``); the connection survives.
        """
        limit = self.timeout if timeout is None else timeout
        future = self.transport.request(message, timeout=limit, then=then)
        finished, _ = wait([future], timeout=limit + 5.0)
        if not finished:  # the I/O thread itself is stuck or gone
            raise RemoteTimeout(
                f"no reply from {self.address} to {type(message).__name__} "
                f"within {limit:g} s"
            )
        result = future.result()
        return result[0] if then is None else result

    def on_hello(self, reply: HelloReply, _buffers: Sequence[Any]) -> HelloReply:
        """I/O thread: check the version, then open the event socket.

        Raises
        ------
        RemoteProtocolError
            The server speaks another protocol version.
        """
        check_hello(reply)
        events = pub_address(self.address, reply.event_port)
        if events is None:
            log.warning(
                "server %s names no event port: following executions by polling",
                self.address,
            )
        else:
            self.transport.connect_events(events)
        return reply

    def close(self) -> None:
        """Stop the I/O thread; pending requests fail with ``ConnectionClosed``."""
        self.transport.close()

    def _on_link(self, link: str, up: bool) -> None:
        if up and link == "commands":
            self._linked.set()
        self.hub.on_link(link, up)

    def _on_tick(self, now: float) -> None:
        self.hub.on_tick(now)
        self.heartbeat.on_tick(now)
