"""Who is on the other end of each command connection, and what it may use.

The identity of a command is the CurveZMQ user of the connection it arrived on
(ZAP's ``User-Id`` on every received frame), never anything the client sends.
A :class:`Peer` is one live connection: its routing id, that user, the socket
descriptor libzmq read it from (``SRCFD``) and the peer's address. An OMERO
session joined by ``Hello`` is kept on the Peer, so it belongs to that user on
that connection only and is forgotten when the connection goes (the socket
monitor reports the descriptor's ``DISCONNECTED``).

A message whose routing id is known but whose user or descriptor differ is a
*new* connection that reused the id (ids are predictable, and clients may set
their own): it starts with a fresh Peer and inherits nothing.

Only the server's loop thread touches a :class:`PeerTable`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Peer:
    """One command connection as the server knows it."""

    routing_id: bytes
    user: str
    fd: int
    address: str
    omero_key: str | None = None
    omero_user: str | None = None
    #: monotonic time OMERO last confirmed the joined session (web front ends)
    omero_checked: float = 0.0
    #: the front-end key a command came through, on the copy that acts for an
    #: OMERO user (:mod:`openhcs_nb.server.frontends`); None otherwise
    via: str | None = None

    @property
    def label(self) -> str:
        """How the audit log and the server log name this connection."""
        label = f"{self.address or 'local'}#{self.routing_id.hex()}"
        return f"{label} via {self.via}" if self.via else label


class PeerTable:
    """Live command connections by routing id, and their descriptors."""

    def __init__(self) -> None:
        self._by_id: dict[bytes, Peer] = {}
        self._ids_on_fd: dict[int, set[bytes]] = {}

    def seen(self, routing_id: bytes, user: str, fd: int, address: str) -> Peer:
        """The Peer a message came from; a reused id with another user is new."""
        peer = self._by_id.get(routing_id)
        if peer is not None and (peer.user != user or peer.fd != fd):
            log.info(
                "routing id %s reused by %r (was %r): fresh connection state",
                routing_id.hex(),
                user,
                peer.user,
            )
            self._drop(peer)
            peer = None
        if peer is None:
            peer = Peer(routing_id, user, fd, address)
            self._by_id[routing_id] = peer
            self._ids_on_fd.setdefault(fd, set()).add(routing_id)
        return peer

    def get(self, routing_id: bytes) -> Peer | None:
        """The live Peer with this routing id, if any."""
        return self._by_id.get(routing_id)

    def disconnected(self, fd: int) -> list[Peer]:
        """Forget every Peer read from ``fd``; returns them."""
        gone = [self._by_id[r] for r in self._ids_on_fd.pop(fd, ()) if r in self._by_id]
        for peer in gone:
            self._drop(peer)
        return gone

    def of_users(self, users: Iterable[str]) -> list[Peer]:
        """Every live Peer of the given users."""
        wanted = set(users)
        return [p for p in self._by_id.values() if p.user in wanted]

    def __len__(self) -> int:
        """Count the live connections."""
        return len(self._by_id)

    def _drop(self, peer: Peer) -> None:
        self._by_id.pop(peer.routing_id, None)
        ids = self._ids_on_fd.get(peer.fd)
        if ids is not None:
            ids.discard(peer.routing_id)
            if not ids:
                del self._ids_on_fd[peer.fd]


def shut_down_connection(fd: int, expected: tuple[str, int] | None = None) -> bool:
    """Close a live TCP connection that libzmq owns, without touching its fd.

    ``shutdown(2)`` on a duplicate of the descriptor ends the connection for
    both ends; libzmq then sees end-of-stream and closes it the normal way.
    ``expected`` is the peer's ``(host, port)`` recorded when it connected: if
    the descriptor now belongs to another connection, nothing is done.
    """
    try:
        dup = os.dup(fd)
    except OSError:
        return False
    sock = socket.socket(fileno=dup)
    try:
        if expected is not None and sock.getpeername()[:2] != expected:
            return False
        sock.shutdown(socket.SHUT_RDWR)
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.close()


def peer_name(fd: int) -> tuple[str, int] | None:
    """The ``(host, port)`` at the other end of a connected socket descriptor."""
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    sock = socket.socket(fileno=dup)
    try:
        host, port = sock.getpeername()[:2]
        return str(host), int(port)
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            sock.close()


def frame_origin(frame: Any, local_user: str | None) -> tuple[str, int, str]:
    """``(user, fd, address)`` of a received frame, from libzmq's metadata.

    With CurveZMQ on (``local_user`` None) the user is the ZAP User-Id of the
    connection, never anything the client sent; without it, everyone is the
    server's one local user.
    """
    import zmq

    if local_user is not None:
        user = local_user
    else:
        try:
            user = frame.get("User-Id") or "anonymous"
        except zmq.ZMQError:
            user = "anonymous"
    try:
        fd = int(frame.get(zmq.SRCFD))
    except (zmq.ZMQError, TypeError, ValueError):
        fd = -1
    try:
        address = frame.get("Peer-Address") or ""
    except zmq.ZMQError:
        address = ""
    return user, fd, address
