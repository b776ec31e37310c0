"""The kernel's connection to an openhcs server: commands, and execution handles.

``connect`` opens a :class:`Connection`: one I/O thread owns its sockets
(``_transport``), one callback thread runs user callbacks (``_dispatch``), and
the caller's thread only ever waits on futures, with a timeout, so a notebook
never hangs on a server that is gone.

Rules:

- Every method sends one command and waits at most ``timeout`` seconds (the
  connection's default unless given). No answer raises
  :class:`~openhcs_nb.client.errors.ServerUnavailable` (never delivered) or
  :class:`~openhcs_nb.client.errors.RemoteTimeout` (no reply); a refusal
  raises the :class:`~openhcs_nb.client.errors.RemoteError` subclass of its code.
- ``submit`` and ``attach`` start following the execution on the I/O thread
  *before* they return, so no event can slip past the returned handle.
- One live :class:`Execution` per execution id and connection. Handles are
  held weakly: one nobody holds any more is forgotten with its previews, and a
  later ``attach`` fetches its wells again.
- Preview images are kept within one byte budget per connection
  (``preview_budget_bytes`` of :func:`connect`, shared by its executions);
  summaries, statuses and errors of every well are always kept.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openhcs_nb.client._commands import (
    PipelineLike,
    check_hello,
    client_name,
    code_of,
    images_of_event,
    pub_address,
)
from openhcs_nb.client._dispatch import CallbackThread
from openhcs_nb.client._html import connection_html
from openhcs_nb.client._keys import CurveKeys, curve_keys
from openhcs_nb.client._preview_cache import DEFAULT_PREVIEW_BUDGET, PreviewCache
from openhcs_nb.client._streams import StreamHub
from openhcs_nb.client._wells import PreviewResult, preview_result
from openhcs_nb.client.errors import (
    ConnectionClosed,
    RemoteTimeout,
    ServerUnavailable,
)
from openhcs_nb.client.execution import Execution
from openhcs_nb.errors import OpenHCSError, OptionalDependencyError
from openhcs_nb.protocol import (
    Cancel,
    ExecutionInfo,
    Fetch,
    FunctionInfo,
    Hello,
    HelloReply,
    ListExecutions,
    ListPlates,
    PlateInfo,
    PlateInfoWire,
    Preview,
    Status,
    Submit,
    SubmitOptions,
)

if TYPE_CHECKING:
    from openhcs_nb.client._transport import Transport

log = logging.getLogger("openhcs_nb.client")

#: Seconds a preview may take by default: it runs a pipeline on the server.
PREVIEW_TIMEOUT = 60.0
#: Seconds a backfill fetch may take before it is sent again.
FETCH_TIMEOUT = 5.0
#: Seconds the HTML repr waits for the executions list before saying so.
REPR_TIMEOUT = 1.0


def _transport_class() -> type[Transport]:
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


class Connection:
    """A connection to one openhcs server; build it with :func:`connect`."""

    def __init__(
        self,
        address: str,
        keys: CurveKeys | None = None,
        *,
        timeout: float = 10.0,
        omero_session: str | None = None,
        quiet_after: float = 1.0,
        preview_budget_bytes: int = DEFAULT_PREVIEW_BUDGET,
    ) -> None:
        self.address = address if "://" in address else f"tcp://{address}"
        self.timeout = timeout
        self.server_info: HelloReply | None = None
        self._executions: weakref.WeakValueDictionary[str, Execution] = (
            weakref.WeakValueDictionary()
        )
        self._previews: PreviewCache[tuple[str, str]] = PreviewCache(
            preview_budget_bytes
        )
        self._lock = threading.Lock()
        self._closed = False
        self._hello = Hello(rid=0, client=client_name(), omero_session=omero_session)
        self._hub = StreamHub(
            quiet_after=quiet_after, timeout=min(timeout, FETCH_TIMEOUT)
        )
        self._transport = _transport_class()(
            self.address,
            keys,
            on_event=self._hub.on_event,
            on_tick=self._hub.on_tick,
            on_link=self._hub.on_link,
        )
        self._hub.bind(self._transport)
        self._transport.requests.hello = self._hello
        self._dispatcher = CallbackThread(f"openhcs-client-callbacks {self.address}")

    # --- handshake ------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self.server_info = self._call(self._hello, then=self._on_hello)
        except ServerUnavailable:
            raise ServerUnavailable(
                f"no openhcs server answered at {self.address} within "
                f"{self.timeout:g} s: is it running? is the key right?"
            ) from None

    def _on_hello(self, reply: HelloReply, _buffers: Sequence[Any]) -> HelloReply:
        """I/O thread: check the version, then open the event socket."""
        check_hello(reply)
        events = pub_address(self.address, reply.event_port)
        if events is None:
            log.warning(
                "server %s names no event port: following executions by polling",
                self.address,
            )
        else:
            self._transport.connect_events(events)
        return reply

    # --- commands -------------------------------------------------------------

    @property
    def catalogue(self) -> list[FunctionInfo]:
        """The functions the server has (as sent in its Hello reply)."""
        return list(self.server_info.catalogue) if self.server_info else []

    @property
    def preview_cache(self) -> PreviewCache[tuple[str, str]]:
        """The previews this connection keeps, keyed ``(execution_id, well)``."""
        return self._previews

    @property
    def event_address(self) -> str | None:
        """Where the event (SUB) socket connects, once the server said."""
        return self._transport.event_address

    def plates(self, *, timeout: float | None = None) -> list[str]:
        """Plate references this user may pass as ``plate``.

        Raises
        ------
        RemoteError
            The server refused or did not answer.
        """
        return list(self._call(ListPlates(rid=0), timeout=timeout).plates)

    def plate_info(self, plate: str, *, timeout: float | None = None) -> PlateInfoWire:
        """The layout of ``plate``: wells, fields, channels, shape.

        Raises
        ------
        RemoteUnknownPlate, RemotePlateError
            No such plate for this user, or it cannot be read.
        """
        return self._call(PlateInfo(rid=0, plate=plate), timeout=timeout).info

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
        """Run ``pipeline`` (a Pipeline or its code) on ``plate``; returns at once.

        Raises
        ------
        RemotePipelineCodeError, RemotePipelineError, RemoteCompileError
            The pipeline was refused (line/col, step/field, step/key).
        RemoteUnknownPlate, RemoteUnknownWell
            The plate or a well is not there.
        RemoteBusy
            The user's quota is reached; retry later.
        """
        options = SubmitOptions(
            preview_size=preview_size, priority=priority, label=label
        )
        message = Submit(
            rid=0,
            pipeline_code=code_of(pipeline),
            plate=plate,
            wells=None if wells is None else list(wells),
            options=options,
        )

        def adopt(reply: Any, _buffers: Sequence[Any]) -> Execution:
            return self._adopt(
                reply.execution_id,
                plate,
                reply.stream_key,
                wells=reply.wells,
                label=label,
            )

        return self._call(message, timeout=timeout, then=adopt)

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
        """Images of one field of ``well`` after the first ``upto`` steps.

        Raises
        ------
        RemotePipelineCodeError, RemoteCompileError, RemoteUnknownWell
            The pipeline or well was refused.
        RemoteError
            The preview failed on the server (``remote_traceback`` says where).
        """
        message = Preview(
            rid=0,
            pipeline_code=code_of(pipeline),
            plate=plate,
            well=well,
            upto=upto,
            site=site,
            max_size=max_size,
        )
        limit = max(PREVIEW_TIMEOUT, self.timeout) if timeout is None else timeout
        return self._call(message, timeout=limit, then=preview_result)

    def status(
        self, execution_id: str, *, timeout: float | None = None
    ) -> ExecutionInfo:
        """The server's record of one execution.

        Raises
        ------
        RemoteUnknownExecution
            No such execution for this user.
        """
        message = Status(rid=0, execution_id=execution_id)
        return self._call(message, timeout=timeout).execution

    def executions(
        self, include_finished: bool = True, *, timeout: float | None = None
    ) -> list[ExecutionInfo]:
        """The executions of this user on the server, newest first.

        Raises
        ------
        RemoteError
            The server refused or did not answer.
        """
        message = ListExecutions(rid=0, include_finished=include_finished)
        return list(self._call(message, timeout=timeout).executions)

    def cancel(self, execution_id: str, *, timeout: float | None = None) -> str:
        """Cancel an execution; returns its state after the request.

        Raises
        ------
        RemoteUnknownExecution
            No such execution for this user.
        """
        message = Cancel(rid=0, execution_id=execution_id)
        return self._call(message, timeout=timeout).state

    def attach(self, execution_id: str, *, timeout: float | None = None) -> Execution:
        """The handle of an execution submitted earlier (e.g. before a restart).

        Every event the server stored is fetched again, so the handle sees
        every well, even when the execution finished long ago.

        Raises
        ------
        RemoteUnknownExecution
            No such execution for this user.
        """
        with self._lock:
            known = self._executions.get(execution_id)
        if known is not None:
            return known
        info = self.status(execution_id, timeout=timeout)
        future = self._transport.run(
            lambda: self._adopt(
                info.execution_id,
                info.plate,
                info.stream_key,
                state=info.state,
                total=info.total,
                label=info.label,
            )
        )
        return future.result(self.timeout)

    def close(self) -> None:
        """Stop the threads and close the sockets; executions go on remotely."""
        if self._closed:
            return
        self._closed = True
        self._transport.close()
        with self._lock:
            executions = list(self._executions.values())
        for execution in executions:
            execution._detach()
        self._dispatcher.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------

    def _call(
        self,
        message: Any,
        *,
        timeout: float | None = None,
        then: Callable[[Any, Sequence[Any]], Any] | None = None,
    ) -> Any:
        """Send ``message`` and wait for ``then(reply, buffers)`` (or the reply)."""
        limit = self.timeout if timeout is None else timeout
        future = self._transport.request(message, timeout=limit, then=then)
        finished, _ = wait([future], timeout=limit + 5.0)
        if not finished:  # the I/O thread itself is stuck or gone
            raise RemoteTimeout(
                f"no reply from {self.address} to {type(message).__name__} "
                f"within {limit:g} s"
            )
        result = future.result()
        return result[0] if then is None else result

    def _adopt(
        self, execution_id: str, plate: str, stream_key: str, **fields: Any
    ) -> Execution:
        """I/O thread: the one handle of ``execution_id``, now followed."""
        with self._lock:
            execution = self._executions.get(execution_id)
            if execution is None:
                execution = Execution(
                    self,
                    execution_id,
                    plate,
                    dispatcher=self._dispatcher,
                    previews=self._previews,
                    **fields,
                )
                self._executions[execution_id] = execution
                weakref.finalize(
                    execution,
                    self._previews.discard_if,
                    lambda key, gone=execution_id: key[0] == gone,
                )
        self._hub.follow(execution, stream_key)
        return execution

    def _fetch_images(
        self,
        execution_id: str,
        seq: int,
        timeout: float | None,
        *,
        full_resolution: bool = True,
    ) -> dict[str, Any]:
        """The images of event ``seq``: full size, or the previews it streamed."""
        message = Fetch(
            rid=0,
            execution_id=execution_id,
            since_seq=seq - 1,
            limit=1,
            full_resolution=full_resolution,
        )
        return self._call(message, timeout=timeout, then=images_of_event(seq))

    def _debug_drop_subscription(self, reopen_after: float = 0.0) -> None:
        """Test hook: close the event socket, reopen it ``reopen_after`` s later."""
        self._transport.call_soon(lambda: self._transport.drop_events(reopen_after))

    # --- display --------------------------------------------------------------

    def __repr__(self) -> str:
        if self._closed:
            return f"<Connection {self.address} (closed)>"
        version = self.server_info.server_version if self.server_info else "?"
        return (
            f"<Connection {self.address}: server {version}, "
            f"{len(self._executions)} executions in this session>"
        )

    def _repr_html_(self) -> str:
        problem: str | None = None
        executions: list[ExecutionInfo] | None = None
        if self._closed:
            problem = "closed"
        else:
            try:
                executions = self.executions(timeout=REPR_TIMEOUT)
            except ConnectionClosed:
                problem = "closed"
            except OpenHCSError as exc:
                problem = f"unreachable: {exc}"
        return connection_html(self.address, self.server_info, executions, problem)


def connect(
    address: str,
    server_key: str | Path | None = None,
    *,
    client_keys: tuple[Path, Path] | None = None,
    timeout: float = 10.0,
    omero_session: str | None = None,
    preview_budget_bytes: int = DEFAULT_PREVIEW_BUDGET,
) -> Connection:
    """Connect to the openhcs server at ``address`` and say Hello.

    ``server_key`` pins the server's CurveZMQ public key (Z85 text or a key
    file); ``client_keys`` are this client's ``(public, secret)`` key files
    (an ephemeral pair is made when omitted). ``preview_budget_bytes`` bounds
    the preview images the connection keeps (64 MiB by default, the newest
    wells first); older wells keep their summaries and fetch their previews
    again on request.

    Raises
    ------
    ServerUnavailable
        No server answered within ``timeout`` (not running, wrong address or
        wrong key).
    RemoteProtocolError
        The server speaks another protocol version.
    RemoteSessionInvalid
        The OMERO session key was refused.
    ClientKeyError
        A key or key file cannot be read.
    """
    keys = curve_keys(server_key, client_keys)
    connection = Connection(
        address,
        keys,
        timeout=timeout,
        omero_session=omero_session,
        preview_budget_bytes=preview_budget_bytes,
    )
    try:
        connection._handshake()
    except BaseException:
        connection.close()
        raise
    return connection
