"""The kernel's connection to an openhcs server: commands, and execution handles.

``connect`` (``_connect``) opens a :class:`Connection`: one I/O thread owns
its sockets, streams and heartbeat (``_link``), one callback thread runs user
callbacks (``_dispatch``), and the caller's thread only ever waits on futures,
with a timeout, so a notebook never hangs on a server that is gone.

Rules:

- Every method sends one command and waits at most ``timeout`` seconds (the
  connection's default unless given). No answer raises
  :class:`~openhcs_nb.client.errors.ServerUnavailable` (never delivered) or
  :class:`~openhcs_nb.client.errors.RemoteTimeout` (no reply); a refusal
  raises the :class:`~openhcs_nb.client.errors.RemoteError` subclass of its code.
- ``submit`` and ``attach`` start following the execution on the I/O thread
  *before* they return, so no event can slip past the returned handle.
- One live :class:`Execution` per execution id and connection (``_handles``).
- While executions are followed, a heartbeat (``_heartbeat``) asks the server
  a cheap question every ``heartbeat_interval`` seconds; after
  ``heartbeat_misses`` unanswered ones the live handles end as
  ``"server lost"`` with a one-line :class:`ServerLost` saying how to reattach.
- Preview images are kept within one byte budget per connection
  (``preview_budget_bytes`` of :func:`connect`, shared by its executions);
  summaries, statuses and errors of every well are always kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from openhcs_nb.client import _events_relay, _presets, _tiles
from openhcs_nb.client._commands import (
    PipelineLike,
    client_name,
    code_of,
    images_of_event,
)
from openhcs_nb.client._dispatch import CallbackThread
from openhcs_nb.client._handles import Handles
from openhcs_nb.client._heartbeat import DEFAULT_INTERVAL, DEFAULT_MISSES, lost_error
from openhcs_nb.client._html import connection_summary_html
from openhcs_nb.client._link import ServerLink
from openhcs_nb.client._preview_cache import DEFAULT_PREVIEW_BUDGET, PreviewCache
from openhcs_nb.client._wells import PreviewResult, preview_result
from openhcs_nb.client.errors import (
    ServerUnavailable,
)
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
from openhcs_nb.protocol.messages import ServerStatus, ServerStatusReply

if TYPE_CHECKING:
    from openhcs_nb.client._keys import CurveKeys
    from openhcs_nb.client.execution import Execution

log = logging.getLogger("openhcs_nb.client")

#: Seconds a preview may take by default: it runs a pipeline on the server.
PREVIEW_TIMEOUT = 60.0
#: Seconds the HTML repr waits for the executions list before saying so.
REPR_TIMEOUT = 1.0


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
        heartbeat_interval: float = DEFAULT_INTERVAL,
        heartbeat_misses: int = DEFAULT_MISSES,
    ) -> None:
        self.address = address if "://" in address else f"tcp://{address}"
        self.timeout = timeout
        self.server_info: HelloReply | None = None
        self._previews: PreviewCache[tuple[str, str]] = PreviewCache(
            preview_budget_bytes
        )
        self._closed = False
        self._hello = Hello(rid=0, client=client_name(), omero_session=omero_session)
        self._link = ServerLink(
            self.address,
            keys,
            self._hello,
            timeout=timeout,
            quiet_after=quiet_after,
            heartbeat=(heartbeat_interval, heartbeat_misses),
            on_lost=self._server_lost,
        )
        self._hub = self._link.hub
        self._transport = self._link.transport
        self._dispatcher = CallbackThread(f"openhcs-client-callbacks {self.address}")
        self._handles = Handles(self, self._dispatcher, self._previews)

    # --- handshake and liveness (I/O thread, but ``_handshake``) ----------------

    def _handshake(self, link_timeout: float, hint: str) -> None:
        """Wait for the link, then say Hello; ``hint`` ends the error message."""
        self._link.wait_linked(link_timeout, hint)
        try:
            self.server_info = self._call(self._hello, then=self._link.on_hello)
        except ServerUnavailable:
            raise ServerUnavailable(
                f"no openhcs server answered Hello at {self.address} within "
                f"{self.timeout:g} s: {hint}"
            ) from None

    def _server_lost(self, silence: float) -> None:
        """The heartbeat gave up: end every followed handle, saying how to go on."""
        log.warning("server %s lost: no answer for %.0f s", self.address, silence)
        self._hub.abandon(lambda run: lost_error(self.address, silence, run.id))

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

        ``pipeline="preset:NAME"`` runs the code of a saved preset (fetched
        now, so the execution records exactly the code that ran).

        Raises
        ------
        RemotePipelineCodeError, RemotePipelineError, RemoteCompileError
            The pipeline was refused (line/col, step/field, step/key).
        RemoteUnknownPlate, RemoteUnknownWell
            The plate or a well is not there.
        RemoteBusy
            The user's quota is reached; retry later.
        """
        preset = _presets.preset_name(pipeline)
        if preset is not None:
            pipeline = self.preset(preset, timeout=timeout).code
            label = label or f"{_presets.PRESET_PREFIX}{preset}"
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

    def server_status(self, *, timeout: float | None = None) -> ServerStatusReply:
        """The server's load as a whole (totals only) and this user's share."""
        return self._call(ServerStatus(rid=0), timeout=timeout)

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
        every well, even when the execution finished long ago. A handle that
        ended as ``"server lost"`` is replaced by a fresh one here.

        Raises
        ------
        RemoteUnknownExecution
            No such execution for this user.
        """
        known = self._handles.live(execution_id)
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
        self._link.close()
        self._handles.detach_all()
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
        return self._link.call(message, timeout=timeout, then=then)

    def _adopt(
        self, execution_id: str, plate: str, stream_key: str, **fields: Any
    ) -> Execution:
        """I/O thread: the one handle of ``execution_id``, now followed."""
        execution = self._handles.adopt(execution_id, plate, **fields)
        self._hub.follow(execution, stream_key)
        return execution

    def _fetch_images(
        self,
        execution_id: str,
        seq: int,
        timeout: float | None,
        *,
        full_resolution: bool = True,
        site: int = 0,
    ) -> dict[str, Any]:
        """The images of event ``seq``: full size (field ``site``), or its previews."""
        message = Fetch(
            rid=0,
            execution_id=execution_id,
            since_seq=seq - 1,
            limit=1,
            full_resolution=full_resolution,
            site=site,
        )
        return self._call(message, timeout=timeout, then=images_of_event(seq))

    pyramid = _tiles.plate_pyramid
    tile = _tiles.plate_tile
    presets = _presets.presets
    preset = _presets.preset
    save_preset = _presets.save_preset
    delete_preset = _presets.delete_preset
    events = _events_relay.events
    well_preview = _events_relay.well_preview

    # --- display --------------------------------------------------------------

    def __repr__(self) -> str:
        if self._closed:
            return f"<Connection {self.address} (closed)>"
        version = self.server_info.server_version if self.server_info else "?"
        return (
            f"<Connection {self.address}: server {version}, "
            f"{len(self._handles)} executions in this session>"
        )

    def _repr_html_(self) -> str:
        return connection_summary_html(self, REPR_TIMEOUT)
