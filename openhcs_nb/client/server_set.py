"""Several execution servers behind the one API of a :class:`Connection`.

``connect(["tcp://a:7710", "tcp://b:7710"])`` returns a :class:`ServerSet`:
one :class:`Connection` per server, and a choice made in the client (no
daemon in between). See ``docs/several-servers.md``.

Rules:

- ``submit`` and ``preview`` go to the least-loaded server, judged from each
  server's ``ServerStatus`` totals (:mod:`~openhcs_nb.client._server_choice`).
  A server that does not know the plate, or that the command never reached,
  passes it on to the next least loaded; a submit sent without a reply in
  time is never sent again elsewhere (the server may have stored it).
- Every later command about an execution goes to the server that owns it.
  An id this set has not seen is looked for on every server (all asked at
  once, the first owner in address order wins); one unknown everywhere is a
  one-line :class:`RemoteUnknownExecution` naming the servers asked.
- ``executions()`` merges every server's list, newest first; each row is a
  :class:`ServerExecutionInfo`, an ``ExecutionInfo`` that says its ``server``.
  ``plates()`` is the union (each reference once): a plate some server lacks
  still runs, on one that has it. ``plates_by_server()`` says who has which.
  ``catalogue`` is the functions every server has, since a run may land on any.
- A server that cannot be asked while the others answer is left out of a
  merged answer with a one-line :class:`ServerUnreachableWarning`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec

from openhcs_nb.client._fanout import Fanout
from openhcs_nb.client._server_choice import (
    ServerExecutionInfo,
    ServerLoad,
    by_load,
    owner_missing,
)
from openhcs_nb.errors import OpenHCSError
from openhcs_nb.protocol import ExecutionInfo

if TYPE_CHECKING:
    import numpy as np

    from openhcs_nb.client._commands import PipelineLike
    from openhcs_nb.client._wells import PreviewResult
    from openhcs_nb.client.connection import Connection
    from openhcs_nb.client.execution import Execution
    from openhcs_nb.protocol import FunctionInfo, HelloReply, PlateInfoWire

T = TypeVar("T")
#: Seconds each server gets to report its load before a submit picks without it.
LOAD_TIMEOUT = 2.0


class ServerSet:
    """Several openhcs servers used as one; build it with :func:`connect`."""

    def __init__(
        self, connections: Sequence[Connection], *, load_timeout: float = LOAD_TIMEOUT
    ) -> None:
        if not connections:
            raise ValueError("a ServerSet needs at least one connection")
        self.connections: tuple[Connection, ...] = tuple(connections)
        self.load_timeout = load_timeout
        self._owners: dict[str, Connection] = {}
        self._lock = threading.Lock()
        self._fan = Fanout(self.connections)

    # --- what the set is ------------------------------------------------------------

    @property
    def addresses(self) -> tuple[str, ...]:
        """The address of each server, in the order given to ``connect``."""
        return tuple(c.address for c in self.connections)

    @property
    def address(self) -> str:
        """Every address, space separated (as ``$OPENHCS_NB_SERVER`` holds them)."""
        return " ".join(self.addresses)

    @property
    def timeout(self) -> float:
        """The default wait of every command (the first connection's)."""
        return self.connections[0].timeout

    @property
    def server_info(self) -> HelloReply | None:
        """The first server's Hello reply (each connection keeps its own)."""
        return self.connections[0].server_info

    @property
    def catalogue(self) -> list[FunctionInfo]:
        """The functions every server has, in the first server's order."""
        names = [{f.name for f in c.catalogue} for c in self.connections[1:]]
        return [
            f for f in self.connections[0].catalogue if all(f.name in n for n in names)
        ]

    def loads(self, *, timeout: float | None = None) -> list[ServerLoad]:
        """Each server's load now, in address order (``reply`` None: no answer)."""
        limit = self.load_timeout if timeout is None else timeout
        answers = self._fan.each(lambda c: c.server_status(timeout=limit))
        return [
            ServerLoad(conn.address, None if isinstance(got, Exception) else got)
            for conn, got in answers
        ]

    def owner(self, execution_id: str, *, timeout: float | None = None) -> Connection:
        """The connection to the server that has ``execution_id``.

        Raises
        ------
        RemoteUnknownExecution
            No server has it for this user (the message names those asked).
        ServerUnavailable
            It is on none of the servers that answered, and some did not.
        """
        with self._lock:
            known = self._owners.get(execution_id)
        if known is not None:
            return known
        answers = self._fan.each(lambda c: c.status(execution_id, timeout=timeout))
        for conn, got in answers:
            if not isinstance(got, OpenHCSError):
                return self._own(execution_id, conn)
        raise owner_missing(execution_id, [(c.address, e) for c, e in answers])

    # --- commands -------------------------------------------------------------------

    def submit(
        self,
        pipeline: PipelineLike | str,
        plate: str,
        wells: Sequence[str] | None = None,
        *,
        preview_size: int = 256,
        label: str = "",
        priority: int = 0,
        timeout: float | None = None,
    ) -> Execution:
        """Run ``pipeline`` on ``plate`` on the least-loaded server; returns at once.

        Raises
        ------
        RemotePipelineCodeError, RemotePipelineError, RemoteCompileError
            The pipeline was refused by the chosen server.
        RemoteUnknownPlate
            No server has the plate.
        ServerUnavailable
            No server could be reached.
        """
        conn, run = self._least_loaded(
            plate,
            lambda c: c.submit(
                pipeline,
                plate,
                wells,
                preview_size=preview_size,
                label=label,
                priority=priority,
                timeout=timeout,
            ),
            once=True,
        )
        self._own(run.id, conn)
        return run

    def preview(
        self,
        pipeline: PipelineLike | str,
        plate: str,
        well: str,
        upto: int | None = None,
        site: int = 0,
        max_size: int = 512,
        *,
        timeout: float | None = None,
    ) -> PreviewResult:
        """One field of ``well`` after ``upto`` steps, on the least-loaded server.

        Raises
        ------
        RemoteError
            As :meth:`Connection.preview`; RemoteUnknownPlate when no server
            has the plate.
        """
        _, result = self._least_loaded(
            plate,
            lambda c: c.preview(
                pipeline, plate, well, upto, site, max_size, timeout=timeout
            ),
        )
        return result

    def status(
        self, execution_id: str, *, timeout: float | None = None
    ) -> ExecutionInfo:
        """The owning server's record of one execution.

        Raises
        ------
        RemoteUnknownExecution
            No server has it for this user.
        """
        return self.owner(execution_id, timeout=timeout).status(
            execution_id, timeout=timeout
        )

    def cancel(self, execution_id: str, *, timeout: float | None = None) -> str:
        """Cancel an execution on the server that owns it; returns its state.

        Raises
        ------
        RemoteUnknownExecution
            No server has it for this user.
        """
        return self.owner(execution_id, timeout=timeout).cancel(
            execution_id, timeout=timeout
        )

    def attach(self, execution_id: str, *, timeout: float | None = None) -> Execution:
        """The handle of an execution on whichever server has it.

        Raises
        ------
        RemoteUnknownExecution
            No server has it for this user (the message names those asked).
        """
        return self.owner(execution_id, timeout=timeout).attach(
            execution_id, timeout=timeout
        )

    def executions(
        self, include_finished: bool = True, *, timeout: float | None = None
    ) -> list[ExecutionInfo]:
        """Every server's executions of this user, newest first, each naming its server.

        Raises
        ------
        RemoteError
            No server answered (one that does not is warned about and left out).
        """
        answers = self._fan.merged(
            lambda c: c.executions(include_finished, timeout=timeout), "executions"
        )
        rows: list[ExecutionInfo] = []
        for conn, infos in answers:
            for info in infos:
                self._own(info.execution_id, conn)
                fields = msgspec.structs.asdict(info)
                rows.append(ServerExecutionInfo(**fields, server=conn.address))
        return sorted(rows, key=lambda r: r.submitted_at, reverse=True)

    def plates(self, *, timeout: float | None = None) -> list[str]:
        """Plate references any server offers, each once, in server order.

        Raises
        ------
        RemoteError
            No server answered.
        """
        found = self.plates_by_server(timeout=timeout).values()
        return list(dict.fromkeys(p for plates in found for p in plates))

    def plates_by_server(self, *, timeout: float | None = None) -> dict[str, list[str]]:
        """The plate references of each server that answered, by address.

        Raises
        ------
        RemoteError
            No server answered.
        """
        answers = self._fan.merged(lambda c: c.plates(timeout=timeout), "plates")
        return {conn.address: plates for conn, plates in answers}

    def plate_info(self, plate: str, *, timeout: float | None = None) -> PlateInfoWire:
        """The layout of ``plate`` from the first server that has it.

        Raises
        ------
        RemoteUnknownPlate, RemotePlateError
            No server has it, or it cannot be read.
        """
        call = lambda c: c.plate_info(plate, timeout=timeout)  # noqa: E731
        return self._fan.first_with(plate, call)[1]

    def pyramid(
        self,
        plate: str,
        well: str,
        field: int = 0,
        *,
        timeout: float | None = None,
    ) -> dict[str, list[tuple[int, int]]]:
        """Pyramid levels of one field, from the first server that has the plate."""
        call = lambda c: c.pyramid(plate, well, field, timeout=timeout)  # noqa: E731
        return self._fan.first_with(plate, call)[1]

    def tile(
        self,
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
        """One tile of one plane, from the first server that has the plate."""
        _, pixels = self._fan.first_with(
            plate,
            lambda c: c.tile(
                plate, well, field, name, level, ty, tx, size, timeout=timeout
            ),
        )
        return pixels

    def close(self) -> None:
        """Close every connection; executions go on on their servers."""
        if self._fan.closed:
            return
        self._fan.close()
        for conn in self.connections:
            conn.close()

    def __enter__(self) -> ServerSet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------

    def _own(self, execution_id: str, conn: Connection) -> Connection:
        with self._lock:
            self._owners[execution_id] = conn
        return conn

    def _least_loaded(
        self, plate: str, call: Callable[[Connection], T], *, once: bool = False
    ) -> tuple[Connection, T]:
        """``call`` on the least-loaded server, passing on to the next as allowed."""
        order = [self.connections[i] for i in by_load(self.loads())]
        return self._fan.first_with(plate, call, order, once=once)

    # --- display --------------------------------------------------------------------

    def __repr__(self) -> str:
        state = " (closed)" if self._fan.closed else ""
        return f"<ServerSet of {len(self.connections)}: {self.address}{state}>"

    def _repr_html_(self) -> str:
        parts = [c._repr_html_() for c in self.connections]
        head = f"<b>{len(self.connections)} openhcs servers</b>"
        return f"<div>{head}{''.join(parts)}</div>"
