"""One handler per command; each returns ``(reply, buffers)`` or None.

None means the reply comes later from another thread: Submit, Preview,
PlateInfo and a Hello that joins an OMERO session do their heavy part on the
compile pool (:mod:`~openhcs_nb.server.offload`). Handlers raise
:class:`~openhcs_nb.errors.OpenHCSError` subclasses for anything the client did
wrong; the loop turns them into an ``ErrorReply`` for that client only.

Who asks is always the :class:`~openhcs_nb.server.peers.Peer` of the connection:
its authenticated user, and the OMERO user whose session it joined. A user sees
only their own executions, and an OMERO execution only while presenting that
OMERO user's session; asking for anyone else's id answers exactly like an
unknown id (and is audited as what it was).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openhcs_nb import __version__
from openhcs_nb.errors import OpenHCSError
from openhcs_nb.functions import builtin_catalogue
from openhcs_nb.protocol import (
    PROTOCOL_VERSION,
    CancelReply,
    ClientMessage,
    ExecutionsReply,
    Fetch,
    Hello,
    HelloReply,
    PlatesReply,
    Preview,
    StatusReply,
    Submit,
    catalogue_to_wire,
)
from openhcs_nb.protocol import Cancel as CancelCmd
from openhcs_nb.protocol import ListExecutions as ListExecutionsCmd
from openhcs_nb.protocol import ListPlates as ListPlatesCmd
from openhcs_nb.protocol import PlateInfo as PlateInfoCmd
from openhcs_nb.protocol import Status as StatusCmd
from openhcs_nb.protocol.messages import Pyramid, ServerStatus, Tile, WellObjects
from openhcs_nb.protocol.preset_messages import (
    DeletePreset,
    GetPreset,
    ListPresets,
    SavePreset,
)
from openhcs_nb.protocol.records import ExecutionInfo
from openhcs_nb.results.store import pipeline_hash
from openhcs_nb.server._audit_trail import AuditTrail
from openhcs_nb.server._loop_replies import rate_limited_reply
from openhcs_nb.server.audit import AuditLog
from openhcs_nb.server.config import ServerConfig
from openhcs_nb.server.errors import QuotaExceededError
from openhcs_nb.server.fetch_handler import answer_fetch, wire_state
from openhcs_nb.server.frontends import Frontends, is_acting
from openhcs_nb.server.frontends import may_see as frontend_may_see
from openhcs_nb.server.jobs import (
    TERMINAL_STATES,
    ExecutionRecord,
    UnknownExecutionError,
)
from openhcs_nb.server.objects_query import answer_objects
from openhcs_nb.server.offload import Offloader
from openhcs_nb.server.omero_access import OmeroAccess
from openhcs_nb.server.peers import Peer
from openhcs_nb.server.plate_access import PlateAccess
from openhcs_nb.server.preset_handlers import PresetHandlers
from openhcs_nb.server.server_load import server_status_reply
from openhcs_nb.server.subscriptions import SubscriptionDecision
from openhcs_nb.server.tiles import TileServer
from openhcs_nb.server.trust import TrustPolicy
from openhcs_nb.server.work import Work

if TYPE_CHECKING:
    from openhcs_nb.server.daemon import Server

log = logging.getLogger(__name__)
Out = tuple[Any, list[Any]] | None


class Handlers:
    """Answers commands using the server's store, scheduler and plate access."""

    def __init__(self, server: Server, config: ServerConfig):
        self.server = server
        self.config = config
        self.store = server.store
        self.scheduler = server.scheduler
        self.plates = PlateAccess(config.plates.roots, demo=config.plates.demo)
        self.audit = AuditTrail(AuditLog(config.audit_path, fsync=config.audit.fsync))
        self.catalogue = builtin_catalogue()
        self.trust = TrustPolicy(config.trust)  # own functions: server/trust.py
        self.results_root = Path(config.results.root)
        self.local_user = os.environ.get("OPENHCS_NB_LOCAL_USER", "local")
        self.omero = (
            OmeroAccess(config, gateway=server.omero_gateway)
            if config.omero.enabled
            else None
        )
        limits = config.limits
        self.offload = Offloader(
            limits.compile_threads, limits.compile_queue, limits.compile_timeout_s
        )
        self.work = Work(self)
        self.frontends = Frontends(
            config.web.frontends,
            self.omero.hello if self.omero is not None else None,
            recheck_s=config.web.session_check_s,
        )
        self.presets = PresetHandlers(self)
        self.tiles = TileServer(self)
        self._submitting: dict[str, int] = {}  # submits still compiling, per user
        self._submit_lock = threading.Lock()
        self.scheduler.endings.on_finished = self.work.audit_finished
        if self.omero is not None:
            self.scheduler.endings.after_finalize = self.work.after_finalize

    def close(self) -> None:
        """Stop the compile pool and leave OMERO sessions."""
        self.tiles.close()  # open tile audit summaries are written
        self.offload.close()
        if self.omero is not None:
            self.omero.close()

    # -- dispatch ----------------------------------------------------------------

    def handle(self, msg: ClientMessage, buffers: list[Any], peer: Peer) -> Out:
        """Answer one decoded command from ``peer``."""
        peer = self.frontends.acting(msg, peer)  # a front end: the OMERO user
        match msg:
            case Hello():
                return self._hello(msg, peer)
            case ListPlatesCmd():
                self.audit.record(peer, "list_plates", "ok")
                return PlatesReply(rid=msg.rid, plates=self.plates.list()), []
            case PlateInfoCmd():
                self._later(peer, msg, lambda: self.work.plate_info(msg, peer))
                return None
            case Submit():
                self._submit(msg, peer)
                return None
            case Preview():
                self._later(peer, msg, lambda: self.work.preview(msg, peer))
                return None
            case StatusCmd():
                record = self.own(msg.execution_id, peer, "status")
                self.audit.record(peer, "status", "ok", execution_id=record.id)
                return StatusReply(rid=msg.rid, execution=self.info_of(record)), []
            case ListExecutionsCmd():
                infos = [
                    self.info_of(r)
                    for r in reversed(self.visible(peer, msg.include_finished))
                ]
                self.audit.record(peer, "list_executions", "ok")
                return ExecutionsReply(rid=msg.rid, executions=infos), []
            case CancelCmd():
                return self._cancel(msg, peer), []
            case Fetch():
                return answer_fetch(self, msg, peer)
            case Pyramid():
                return self.tiles.pyramid(msg, peer)
            case Tile():
                return self.tiles.tile(msg, peer)
            case ListPresets() | GetPreset() | SavePreset() | DeletePreset():
                self._later(peer, msg, lambda: self.presets.answer(msg, peer))
                return None
            case ServerStatus():
                self.audit.record(peer, "server_status", "ok")
                workers = len(self.server.workers)
                return server_status_reply(msg.rid, self.store, workers, peer.user), []
            case WellObjects():  # rows read off the loop (objects_query)
                self._later(peer, msg, lambda: answer_objects(self, msg, peer))
                return None
        raise OpenHCSError(f"unhandled command {type(msg).__name__}")

    def _later(self, peer: Peer, msg: Any, job: Any) -> None:
        def reply(message: Any, buffers: list[Any] | None) -> None:
            self.server.reply_later(peer.routing_id, message, buffers)

        def refused(exc: OpenHCSError) -> None:
            self.audit_refusal(peer, msg, exc)

        self.offload.submit(msg.rid, job, reply, refused, _action(msg), peer.user)

    # -- identity and ownership -------------------------------------------------

    def _hello(self, msg: Hello, peer: Peer) -> Out:
        self.frontends.hello(msg, peer)
        if msg.omero_session and self.omero is not None:
            self._later(peer, msg, lambda: self.frontends.join(self.work, msg, peer))
            return None
        self.audit.record(peer, "hello", "ok", detail=msg.client[:200])
        return self.hello_reply(msg, peer), []

    def hello_reply(self, msg: Hello, peer: Peer) -> HelloReply:
        """The HelloReply for ``peer``, as it is now."""
        port = int(self.server.event_endpoint.rsplit(":", 1)[1])
        return HelloReply(
            rid=msg.rid,
            server_version=__version__,
            protocol_version=PROTOCOL_VERSION,
            catalogue=catalogue_to_wire(self.catalogue),
            gpus=[str(g) for g in self.config.execution.gpus],
            workers=len(self.server.workers),
            max_concurrent=self.config.execution.max_concurrent_executions,
            user=peer.user,
            event_port=port,
            omero_user=peer.omero_user,
            dashboard_url=getattr(self.server, "executor", None)
            and self.server.executor.dashboard_url,
        )

    def may_see(self, record: ExecutionRecord, peer: Peer) -> bool:
        """Whether ``peer`` may see ``record``: same user (and OMERO user)."""
        if is_acting(peer):  # a front end: what its OMERO user ran, by any key
            return frontend_may_see(record, peer)
        if record.user != peer.user:
            return False
        return record.omero_user is None or record.omero_user == peer.omero_user

    def own(self, execution_id: str, peer: Peer, action: str) -> ExecutionRecord:
        """The record of an execution ``peer`` may see.

        Raises
        ------
        UnknownExecutionError
            Unknown, or someone else's (the two are answered alike).
        """
        record = self.store.get_execution(execution_id)
        if record is None or not self.may_see(record, peer):
            reason = "no such execution" if record is None else "not the owner"
            self.audit.record(
                peer, action, "refused", execution_id=execution_id[:140], detail=reason
            )
            raise UnknownExecutionError(
                f"no execution {execution_id[:140]!r} for user {peer.user!r}"
            )
        return record

    def visible(self, peer: Peer, include_finished: bool) -> list[ExecutionRecord]:
        """The executions ``peer`` may see, oldest first."""
        records = (
            self.store.omero_executions(
                peer.omero_user, include_finished=include_finished
            )
            if is_acting(peer) and peer.omero_user is not None
            else self.store.list_executions(
                peer.user, include_finished=include_finished
            )
        )
        return [r for r in records if self.may_see(r, peer)]

    def info_of(self, record: ExecutionRecord) -> ExecutionInfo:
        """The wire form of an execution record, for its owner."""
        return ExecutionInfo(
            execution_id=record.id,
            plate=record.plate,
            state=wire_state(record.state),
            user=record.user,
            submitted_at=record.submitted_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            total=record.total,
            done=record.done,
            failed=record.failed,
            last_seq=record.last_seq,
            label=str(record.options.get("label", "")),
            error=record.error,
            stream_key=record.stream_key,
            omero_user=record.omero_user,
            note=self.work.note(record.id),
        )

    # -- commands ------------------------------------------------------------------

    def _submit(self, msg: Submit, peer: Peer) -> None:
        limit = self.config.limits.max_queued_per_user
        with self._submit_lock:
            compiling = self._submitting.get(peer.user, 0)
        active = (
            self.store.count_active(peer.user)
            + compiling
            - self.scheduler.unwritten_failures(peer.user)
        )
        if active >= limit:
            raise QuotaExceededError(
                f"user {peer.user!r} already has {limit} executions queued or "
                f"running ([limits] max_queued_per_user); wait for one to finish "
                "or cancel one"
            )
        with self._submit_lock:
            self._submitting[peer.user] = self._submitting.get(peer.user, 0) + 1

        def job() -> Out:
            try:
                return self.work.submit(msg, peer)
            finally:
                self._submitted(peer.user)

        try:
            self._later(peer, msg, job)
        except OpenHCSError:
            self._submitted(peer.user)
            raise

    def _submitted(self, user: str) -> None:
        with self._submit_lock:
            left = self._submitting.get(user, 1) - 1
            if left > 0:
                self._submitting[user] = left
            else:
                self._submitting.pop(user, None)

    def _cancel(self, msg: CancelCmd, peer: Peer) -> CancelReply:
        record = self.own(msg.execution_id, peer, "cancel")
        if record.state not in TERMINAL_STATES:
            self.work.forget_waiting(record.id)
            stored = self.scheduler.cancel(msg.execution_id)
            if stored is not None:
                self.server.publish(stored)
            if self.omero is not None:
                self.omero.release(msg.execution_id)
        self.audit.record(peer, "cancel", "ok", execution_id=record.id)
        state = wire_state(self.own(msg.execution_id, peer, "cancel").state)
        return CancelReply(rid=msg.rid, execution_id=msg.execution_id, state=state)

    # -- refusals and audit hooks for the loop ---------------------------------------

    def rate_limited(self, peer: Peer, msg: Any, wait: float) -> Any:
        """The reply to a command over the user's rate (audited, summarised)."""
        self.audit.rate_limited(peer, _action(msg))
        rate = self.config.limits.requests_per_second
        return rate_limited_reply(msg.rid, peer.user, wait, rate)

    def audit_refusal(self, peer: Peer, msg: Any, exc: OpenHCSError) -> None:
        """Audit a typed refusal of ``msg``."""
        if isinstance(exc, UnknownExecutionError):
            return  # already audited by own(), with the true reason
        self.audit.record(
            peer,
            _action(msg),
            "refused",
            plate=getattr(msg, "plate", None),
            execution_id=getattr(msg, "execution_id", None),
            pipeline_hash=pipeline_hash(msg.pipeline_code)
            if isinstance(msg, Submit)
            else None,
            detail=f"{getattr(exc, 'code', 'error')}: {str(exc)[:500]}",
        )

    def audit_peer(self, peer: Peer, action: str, outcome: str, detail: str) -> None:
        """Audit something the loop did to or for a connection."""
        self.audit.record(peer, action, outcome, detail=detail[:500])

    def audit_subscription(
        self, user: str | None, decision: SubscriptionDecision
    ) -> None:
        """Audit an event subscription request, admitted or refused."""
        self.audit.record(
            None,
            "subscribe",
            "ok" if decision.allowed else "refused",
            user=user or self.local_user,
            execution_id=decision.execution_id,
            detail=decision.reason,
        )

    def connection_closed(self, peer: Peer) -> None:
        """The connection went: its OMERO session key is forgotten with it."""
        if peer.omero_key is not None:
            log.info(
                "connection %s of %s closed: session forgotten", peer.label, peer.user
            )
        peer.omero_key = None
        peer.omero_user = None

    def resume(self, execution_ids: list[str]) -> None:
        """Queue again the executions a stopped or crashed server left unfinished."""
        self.work.resume(execution_ids)


def _action(msg: Any) -> str:
    name = type(msg).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
