"""One handler per command; each returns ``(reply, buffers)`` or None.

None means the reply comes later from another thread (a preview runs on a
worker). Handlers raise :class:`~openhcs_nb.errors.OpenHCSError` subclasses for
anything the client did wrong; the loop turns them into an ``ErrorReply`` for
that client only. Users see only their own executions: asking for someone
else's id answers exactly like an unknown id.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openhcs_nb import __version__
from openhcs_nb.errors import OpenHCSError, PlateError
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.preview import PreviewResult
from openhcs_nb.functions import builtin_catalogue
from openhcs_nb.pipeline.loader import load_pipeline
from openhcs_nb.plates.model import Plate
from openhcs_nb.protocol import (
    PROTOCOL_VERSION,
    ArrayPacker,
    CancelReply,
    ClientMessage,
    ExecutionsReply,
    Fetch,
    Hello,
    HelloReply,
    PlateInfoReply,
    PlatesReply,
    Preview,
    PreviewReply,
    Queued,
    StatusReply,
    Submit,
    Submitted,
    catalogue_to_wire,
    error_reply,
    plate_info_to_wire,
)
from openhcs_nb.protocol import Cancel as CancelCmd
from openhcs_nb.protocol import ListExecutions as ListExecutionsCmd
from openhcs_nb.protocol import ListPlates as ListPlatesCmd
from openhcs_nb.protocol import PlateInfo as PlateInfoCmd
from openhcs_nb.protocol import Status as StatusCmd
from openhcs_nb.protocol.records import ExecutionInfo
from openhcs_nb.results.store import ResultsStore, pipeline_hash
from openhcs_nb.server._events import draft, fetch_reply, finished_draft
from openhcs_nb.server.audit import AuditLog
from openhcs_nb.server.config import ServerConfig
from openhcs_nb.server.jobs import (
    TERMINAL_STATES,
    ExecutionRecord,
    ExecutionState,
    ExecutionTrigger,
    UnknownExecutionError,
)
from openhcs_nb.server.omero_access import OmeroAccess, is_omero_ref
from openhcs_nb.server.plate_access import PlateAccess
from openhcs_nb.server.scheduler import ActiveExecution, PreviewJob
from openhcs_nb.server.workers import PreviewTask

if TYPE_CHECKING:
    from openhcs_nb.server.daemon import Server

log = logging.getLogger(__name__)
Out = tuple[Any, list[Any]] | None


class QuotaExceededError(OpenHCSError):
    """The user already has as many executions queued as the server allows."""

    code = "quota_exceeded"


class Handlers:
    """Answers commands using the server's store, scheduler and plate access."""

    def __init__(self, server: Server, config: ServerConfig):
        self.server = server
        self.config = config
        self.store = server.store
        self.scheduler = server.scheduler
        self.plates = PlateAccess(config.plates.roots, demo=config.plates.demo)
        self.audit = AuditLog(config.audit_path, fsync=config.audit.fsync)
        self.catalogue = builtin_catalogue()
        self.device = "cuda:0" if config.execution.gpus else "cpu"
        self.results_root = Path(config.results.root)
        self.omero = (
            OmeroAccess(config, gateway=server.omero_gateway)
            if config.omero.enabled
            else None
        )
        self.scheduler.on_finished = self._audit_finished
        if self.omero is not None:
            self.scheduler.after_finalize = self._after_finalize

    def handle(
        self, msg: ClientMessage, buffers: list[Any], user: str, identity: bytes
    ) -> Out:
        """Answer one decoded command."""
        if self.omero is not None:
            user = self.omero.user(identity) or user
        match msg:
            case Hello():
                return self._hello(msg, user, identity), []
            case ListPlatesCmd():
                return PlatesReply(rid=msg.rid, plates=self.plates.list()), []
            case PlateInfoCmd():
                plate = self._open_plate(msg.plate, identity)
                info = plate_info_to_wire(plate.layout)
                return PlateInfoReply(rid=msg.rid, info=info), []
            case Submit():
                return self._submit(msg, user, identity), []
            case Preview():
                self._preview(msg, user, identity)
                return None
            case StatusCmd():
                record = self._own(msg.execution_id, user)
                return StatusReply(rid=msg.rid, execution=info_of(record)), []
            case ListExecutionsCmd():
                records = self.store.list_executions(
                    user, include_finished=msg.include_finished
                )
                infos = [info_of(r) for r in reversed(records)]
                return ExecutionsReply(rid=msg.rid, executions=infos), []
            case CancelCmd():
                return self._cancel(msg, user), []
            case Fetch():
                return self._fetch(msg, user)
        raise OpenHCSError(f"unhandled command {type(msg).__name__}")

    def _open_plate(self, ref: str, identity: bytes) -> Plate:
        if self.omero is not None and is_omero_ref(ref):
            return self.omero.open(ref, identity)
        return self.plates.open(ref)

    def _hello(self, msg: Hello, user: str, identity: bytes) -> HelloReply:
        if msg.omero_session and self.omero is not None:
            user = self.omero.hello(identity, msg.omero_session)
        port = int(self.server.event_endpoint.rsplit(":", 1)[1])
        return HelloReply(
            rid=msg.rid,
            server_version=__version__,
            protocol_version=PROTOCOL_VERSION,
            catalogue=catalogue_to_wire(self.catalogue),
            gpus=[str(g) for g in self.config.execution.gpus],
            workers=len(self.server.workers),
            max_concurrent=self.config.execution.max_concurrent_executions,
            user=user,
            event_port=port,
        )

    def _own(self, execution_id: str, user: str) -> ExecutionRecord:
        record = self.store.get_execution(execution_id)
        if record is None or record.user != user:
            raise UnknownExecutionError(
                f"no execution {execution_id!r} for user {user!r}"
            )
        return record

    def _submit(self, msg: Submit, user: str, identity: bytes) -> Submitted:
        limit = self.config.execution.max_queued_per_user
        if self.store.count_active(user) >= limit:
            raise QuotaExceededError(
                f"user {user!r} already has {limit} executions queued or running; "
                "wait for one to finish or cancel one"
            )
        code_hash = pipeline_hash(msg.pipeline_code)
        try:
            pipeline = load_pipeline(msg.pipeline_code, self.catalogue)
            plate = self._open_plate(msg.plate, identity)
            plan = compile_pipeline(
                pipeline, plate, msg.wells, device=self.device, code=msg.pipeline_code
            )
            record = self.store.create_execution(
                user, msg.plate, msg.pipeline_code, plan.wells, _options(msg)
            )
            omero = self.omero is not None and is_omero_ref(msg.plate)
            if omero:
                self.omero.hold(identity, record.id)
        except Exception as exc:
            self.audit.record(
                user=user,
                action="submit",
                outcome="refused",
                plate=msg.plate,
                pipeline_hash=code_hash,
                detail=f"{getattr(exc, 'code', type(exc).__name__)}: {exc}",
            )
            raise
        self.audit.record(
            user=user,
            action="submit",
            outcome="accepted",
            plate=msg.plate,
            execution_id=record.id,
            pipeline_hash=code_hash,
        )
        out = self.results_root / record.id
        ResultsStore(out).create(plan, {"execution_id": record.id, "user": user})
        position = len(self.scheduler.active_ids())
        stored = self.store.append_event(
            record.id,
            "queued",
            draft(Queued, record.id, position=position).payload,
        )
        self.server.publish(stored)
        active = _active(record.id, user, plan, out, msg.options.preview_size)
        active.plate = plate if omero else None
        self.scheduler.enqueue(active)
        log.info(
            "execution %s: %s submitted %d wells of %s",
            record.id,
            user,
            len(plan.wells),
            msg.plate,
        )
        return Submitted(
            rid=msg.rid, execution_id=record.id, wells=list(plan.wells), seq=stored.seq
        )

    def resume(self, execution_ids: list[str]) -> None:
        """Queue again the executions a stopped or crashed server left unfinished."""
        for execution_id in execution_ids:
            record = self.store.get_execution(execution_id)
            if record is None:
                continue
            if is_omero_ref(record.plate):
                self._fail(
                    record,
                    "the OMERO session is not kept across server restarts; "
                    "submit the pipeline again",
                )
                continue
            try:
                pipeline = load_pipeline(record.pipeline_code, self.catalogue)
                plate = self.plates.open(record.plate)
                wells = [w.well for w in self.store.wells(execution_id)]
                plan = compile_pipeline(
                    pipeline,
                    plate,
                    wells,
                    device=self.device,
                    code=record.pipeline_code,
                )
            except (OpenHCSError, PlateError) as exc:
                log.warning("execution %s cannot resume: %s", execution_id, exc)
                self._fail(record, f"cannot resume after a restart: {exc}")
                continue
            pending = self.store.pending_wells(execution_id)
            active = _active(
                execution_id, record.user, plan, self.results_root / execution_id, 0
            )
            active.pending = deque(pending)
            active.done, active.failed = record.done, record.failed
            active.preview_size = int(record.options.get("preview_size", 256))
            log.info("execution %s resumes: %d wells left", execution_id, len(pending))
            if pending:
                self.scheduler.enqueue(active)
            else:  # the crash came between the last well and the tables
                self.scheduler.finish_now(active)

    def _audit_finished(self, execution_id: str, state: str, error: str | None) -> None:
        record = self.store.get_execution(execution_id)
        if record is None:
            return
        self.audit.record(
            user=record.user,
            action="finish",
            outcome=state,
            execution_id=execution_id,
            plate=record.plate,
            pipeline_hash=record.pipeline_hash,
            detail={"done": record.done, "failed": record.failed, "error": error},
        )

    def _after_finalize(self, active: ActiveExecution) -> str | None:
        if self.omero is None or not is_omero_ref(active.plan.plate_ref):
            return None
        return self.omero.write_back(active.id, self.results_root)

    def _fail(self, record: ExecutionRecord, error: str) -> None:
        event = finished_draft(record, "failed", error)
        stored = self.store.set_execution_state(
            record.id, ExecutionTrigger.FAIL, error=error, event=event
        )
        if stored is not None:
            self.server.publish(stored)

    def _preview(self, msg: Preview, user: str, identity: bytes) -> None:
        pipeline = load_pipeline(msg.pipeline_code, self.catalogue)
        plate = self._open_plate(msg.plate, identity)
        well = plate.check_well(msg.well)
        plan = compile_pipeline(
            pipeline, plate, [well], device=self.device, code=msg.pipeline_code
        )
        size = max(16, min(msg.max_size, 4096))
        carried = plate if is_omero_ref(msg.plate) else None
        task = PreviewTask(plan, well, msg.upto, msg.site, size, carried)
        started = time.perf_counter()

        def reply(status: str, payload: Any) -> None:
            if status != "ok":
                kind, message, trace = payload or ("Cancelled", "preview cancelled", "")
                error = OpenHCSError(f"preview of {well} failed: {kind}: {message}")
                error.code = "execution_error"
                self.server.reply_later(
                    identity, error_reply(error, msg.rid, traceback=trace)
                )
                return
            result: PreviewResult = payload
            packer = ArrayPacker()
            refs = [packer.add(name, image) for name, image in result.images.items()]
            count = result.summary.get("count", 0)
            answer = PreviewReply(
                rid=msg.rid,
                well=result.well,
                step_names=list(result.step_names),
                images=refs,
                measurements={k: float(v) for k, v in result.summary.items()},
                objects=int(count),
                site=result.site,
                elapsed=time.perf_counter() - started,
            )
            self.server.reply_later(identity, answer, packer.buffers)

        self.scheduler.preview(PreviewJob(task, reply, user))

    def _cancel(self, msg: CancelCmd, user: str) -> CancelReply:
        record = self._own(msg.execution_id, user)
        if record.state not in TERMINAL_STATES:
            stored = self.scheduler.cancel(msg.execution_id)
            if stored is not None:
                self.server.publish(stored)
            if self.omero is not None:
                self.omero.release(msg.execution_id)
            self.audit.record(
                user=user, action="cancel", outcome="ok", execution_id=record.id
            )
        state = wire_state(self._own(msg.execution_id, user).state)
        return CancelReply(rid=msg.rid, execution_id=msg.execution_id, state=state)

    def _fetch(self, msg: Fetch, user: str) -> Out:
        record = self._own(msg.execution_id, user)
        limit = max(1, min(msg.limit, 1000))
        stored = self.store.events_since(msg.execution_id, msg.since_seq, limit)
        last = stored[-1].seq if stored else msg.since_seq
        complete = record.state in TERMINAL_STATES and last >= record.last_seq
        swap = None
        if msg.full_resolution:
            results = ResultsStore(self.results_root / record.id)
            swap = lambda event: results.read_field(event.well)  # noqa: E731
        reply, buffers = fetch_reply(
            msg.rid,
            msg.execution_id,
            stored,
            record.last_seq,
            complete,
            wire_state(record.state),
            swap,
        )
        return reply, buffers


def wire_state(state: ExecutionState) -> str:
    """The wire name of a stored state: the store says finished, the wire done."""
    return "done" if state is ExecutionState.FINISHED else state.value


def info_of(record: ExecutionRecord) -> ExecutionInfo:
    """The wire form of an execution record."""
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
    )


def _options(msg: Submit) -> dict[str, Any]:
    opts = msg.options
    return {
        "preview_size": opts.preview_size,
        "priority": opts.priority,
        "label": opts.label,
    }


def _active(
    execution_id: str, user: str, plan: Any, out: Path, preview_size: int
) -> ActiveExecution:
    return ActiveExecution(
        id=execution_id,
        user=user,
        plan=plan,
        out=out,
        preview_size=preview_size,
        pending=deque(plan.wells),
        total=len(plan.wells),
    )
