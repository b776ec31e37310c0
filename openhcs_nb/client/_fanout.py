"""Asking several servers: all at once, or one after another until one takes it.

:class:`~openhcs_nb.client.server_set.ServerSet` says *what* to ask;
:class:`Fanout` says *how*: in parallel on a small thread pool (one thread per
server, so one slow server never delays the others' answers), with each
server's typed error kept as its answer instead of raised.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from openhcs_nb.client._server_choice import ServerUnreachableWarning, plate_missing
from openhcs_nb.client.errors import (
    ConnectionClosed,
    RemoteTimeout,
    RemoteUnknownPlate,
    ServerUnavailable,
)
from openhcs_nb.errors import OpenHCSError

if TYPE_CHECKING:
    from openhcs_nb.client.connection import Connection

T = TypeVar("T")


class Fanout:
    """Commands to several connections; closed once, with its threads."""

    def __init__(self, connections: Sequence[Connection]) -> None:
        self.connections = tuple(connections)
        self.closed = False
        self._pool = ThreadPoolExecutor(
            max_workers=len(self.connections), thread_name_prefix="openhcs-servers"
        )

    @property
    def address(self) -> str:
        """Every address, space separated."""
        return " ".join(c.address for c in self.connections)

    def close(self) -> None:
        """Stop the threads (the connections are closed by their owner)."""
        self.closed = True
        self._pool.shutdown(wait=False)

    def each(
        self, call: Callable[[Connection], T]
    ) -> list[tuple[Connection, T | OpenHCSError]]:
        """``call`` on every server at once: its result or its typed error, in order."""

        def guarded(conn: Connection) -> T | OpenHCSError:
            try:
                return call(conn)
            except OpenHCSError as exc:
                return exc

        if self.closed:
            raise ConnectionClosed(f"the set of servers {self.address} is closed")
        futures = [self._pool.submit(guarded, c) for c in self.connections]
        return [(c, f.result()) for c, f in zip(self.connections, futures, strict=True)]

    def merged(
        self, call: Callable[[Connection], T], what: str
    ) -> list[tuple[Connection, T]]:
        """Answers of the servers that gave one; warn of the others (raise if none)."""
        answers = self.each(call)
        good = [(c, got) for c, got in answers if not isinstance(got, OpenHCSError)]
        failed = [(c, got) for c, got in answers if isinstance(got, OpenHCSError)]
        if not good:
            raise failed[0][1]
        for conn, exc in failed:
            warnings.warn(
                f"{what} of {conn.address} left out: {exc}",
                ServerUnreachableWarning,
                stacklevel=3,
            )
        return good

    def first_with(
        self,
        plate: str,
        call: Callable[[Connection], T],
        order: Sequence[Connection] | None = None,
        *,
        once: bool = False,
    ) -> tuple[Connection, T]:
        """``call`` on the first server (of ``order``) that has ``plate`` and answers.

        A server that does not know the plate, or that the command never
        reached, passes it on. With ``once`` (a submit, which the server may
        have stored) a command sent without a reply in time is not sent again.
        """
        missed: list[tuple[Connection, OpenHCSError]] = []
        for conn in order or self.connections:
            try:
                return conn, call(conn)
            except (RemoteUnknownPlate, ServerUnavailable) as exc:
                if once and isinstance(exc, RemoteTimeout):
                    raise
                missed.append((conn, exc))
        raise plate_missing(plate, [(c.address, e) for c, e in missed])
