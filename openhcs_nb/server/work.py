"""The heavy half of Submit, Preview, PlateInfo and OMERO Hello, and resumption.

Everything here runs on the compile pool (:mod:`~openhcs_nb.server.offload`),
never on the command loop, and returns the reply (or raises a typed error).
It reads the asking :class:`~openhcs_nb.server.peers.Peer` as it was when the
command arrived; only :meth:`Work.join_omero` writes to it (before its reply is
sent, so the client's next command sees the joined session).

OMERO executions interrupted by a restart cannot be reopened without their
user's session, which is never stored: they wait, queued, until that user
connects again with a session, then resume where they stopped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openhcs_nb.errors import OpenHCSError, PlateError, UnknownPlateError
from openhcs_nb.execution._store_io import store_layout
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.preview import PreviewResult
from openhcs_nb.plates.model import Plate
from openhcs_nb.protocol import (
    ArrayPacker,
    Hello,
    PlateInfo,
    PlateInfoReply,
    Preview,
    PreviewReply,
    Queued,
    Submit,
    Submitted,
    error_reply,
    plate_info_to_wire,
)
from openhcs_nb.results.store import ResultsStore, pipeline_hash
from openhcs_nb.server._events import draft, finished_draft
from openhcs_nb.server.errors import StorageError
from openhcs_nb.server.jobs import ExecutionRecord, ExecutionTrigger
from openhcs_nb.server.log_format import ids
from openhcs_nb.server.omero_access import is_omero_ref
from openhcs_nb.server.peers import Peer
from openhcs_nb.server.plate_phase_runs import prepare_phase
from openhcs_nb.server.scheduler import ActiveExecution, PreviewJob
from openhcs_nb.server.workers import PreviewTask

if TYPE_CHECKING:
    from openhcs_nb.server.handlers import Handlers

log = logging.getLogger(__name__)
Out = tuple[Any, list[Any]]
_MAX_REF = 1024
_WAITING = "waiting for its user to connect with an OMERO session"


def check_plate_ref(ref: str) -> str:
    """Refuse plate references no source could mean, before touching a path.

    Raises
    ------
    UnknownPlateError
        Empty, over-long, or with control characters (e.g. a NUL byte).
    """
    if not ref or len(ref) > _MAX_REF or any(ord(c) < 32 for c in ref):
        raise UnknownPlateError(f"unknown plate {ref[:80]!r}: not a plate reference")
    return ref


class Work:
    """Command bodies that may take long; each returns a reply or raises."""

    def __init__(self, handlers: Handlers) -> None:
        self.h = handlers
        self._lock = threading.Lock()
        #: (user, OMERO user) -> execution ids waiting for that session.
        self._waiting: dict[tuple[str, str], list[str]] = {}

    # -- commands ------------------------------------------------------------------

    def open_plate(self, ref: str, peer: Peer) -> Plate:
        """Open a plate as ``peer`` may (OMERO plates through its session)."""
        check_plate_ref(ref)
        if self.h.omero is not None and is_omero_ref(ref):
            return self.h.omero.open(ref, peer.omero_key)
        return self.h.plates.open(ref)

    def plate_info(self, msg: PlateInfo, peer: Peer) -> Out:
        """Answer PlateInfo."""
        plate = self.open_plate(msg.plate, peer)
        self.h.audit.record(peer, "plate_info", "ok", plate=msg.plate)
        return PlateInfoReply(rid=msg.rid, info=plate_info_to_wire(plate.layout)), []

    def join_omero(self, msg: Hello, peer: Peer) -> Out:
        """Join the OMERO session of a Hello, then resume what waited for it."""
        assert self.h.omero is not None and msg.omero_session
        omero_user = self.h.omero.hello(msg.omero_session)  # refusals: audited once
        peer.omero_key, peer.omero_user = msg.omero_session, omero_user
        self.h.audit.record(peer, "hello", "ok", detail="joined an OMERO session")
        self._resume_waiting(peer)
        return self.h.hello_reply(msg, peer), []

    def submit(self, msg: Submit, peer: Peer) -> Out:
        """Load, compile and store an execution, then queue it."""
        code_hash = pipeline_hash(msg.pipeline_code)
        omero = is_omero_ref(msg.plate) and self.h.omero is not None
        try:
            pipeline = self.h.trust.load(
                msg.pipeline_code, self.h.catalogue, peer.user, self._groups(peer)
            )
            plate = self.open_plate(msg.plate, peer)
            plan = compile_pipeline(
                pipeline,
                plate,
                msg.wells,
                device=self._device,
                code=msg.pipeline_code,
                gpu_oom=self.h.config.execution.gpu_oom,
            )
            record = self._create(msg, peer, list(plan.wells), omero)
            if omero:
                assert self.h.omero is not None
                self.h.omero.hold(peer.omero_key, record.id)
        except Exception as exc:
            if not isinstance(exc, OpenHCSError):  # typed: Handlers.audit_refusal
                self.h.audit.record(
                    peer,
                    "submit",
                    "refused",
                    plate=msg.plate[:_MAX_REF],
                    pipeline_hash=code_hash,
                    detail=f"{type(exc).__name__}: {str(exc)[:500]}",
                )
            raise
        out = self.h.results_root / record.id
        try:
            ResultsStore(out).create(
                store_layout(plan), {"execution_id": record.id, "user": peer.user}
            )
            position = len(self.h.scheduler.active_ids())
            queued = draft(Queued, record.id, position=position)
            stored = self.h.store.append_event(record.id, "queued", queued.payload)
        except (OSError, sqlite3.Error) as exc:
            cause = f"the server could not write the new execution: {exc}"
            self._give_up(record, cause)
            raise StorageError(cause) from exc
        self.h.audit.record(
            peer,
            "submit",
            "accepted",
            plate=msg.plate,
            execution_id=record.id,
            pipeline_hash=code_hash,
        )
        self.h.server.publish(stored)
        active = _active(record, plan, out, _preview_size(msg.options.preview_size))
        active.plate = plate if omero else None
        self.h.scheduler.enqueue(active)
        log.info(
            "execution %s: %s submitted %d wells of %s",
            record.id,
            peer.user,
            len(plan.wells),
            msg.plate,
            extra=ids(user=peer.user),
        )
        reply = Submitted(
            rid=msg.rid,
            execution_id=record.id,
            wells=list(plan.wells),
            seq=stored.seq,
            stream_key=record.stream_key,
        )
        return reply, []

    def _groups(self, peer: Peer) -> list[str]:
        """The OMERO group of the peer's session, for ``[trust] groups``."""
        if not self.h.config.trust.groups or self.h.omero is None:
            return []
        if not peer.omero_key:
            return []
        return [self.h.omero.pool.join(peer.omero_key).group_name]

    @property
    def _device(self) -> str:
        return "cuda:0" if self.h.config.execution.gpus else "cpu"

    def _create(
        self, msg: Submit, peer: Peer, wells: list[str], omero: bool
    ) -> ExecutionRecord:
        options = {
            "preview_size": _preview_size(msg.options.preview_size),
            "priority": msg.options.priority,
            "label": msg.options.label,
        }
        try:
            return self.h.store.create_execution(
                peer.user,
                msg.plate,
                msg.pipeline_code,
                wells,
                options,
                omero_user=peer.omero_user if omero else None,
            )
        except sqlite3.Error as exc:
            raise StorageError(
                f"the server could not store the execution ({exc}); nothing was started"
            ) from exc

    def _give_up(self, record: ExecutionRecord, cause: str) -> None:
        self.h.scheduler.fail_never_started(record.id, record.user, cause)

    def preview(self, msg: Preview, peer: Peer) -> None:
        """Compile a one-well preview and hand it to the scheduler."""
        pipeline = self.h.trust.load(
            msg.pipeline_code, self.h.catalogue, peer.user, self._groups(peer)
        )
        plate = self.open_plate(msg.plate, peer)
        well = plate.check_well(msg.well)
        fields = plate.layout.fields
        if not 0 <= msg.site < fields:
            raise PlateError(
                f"site {msg.site} is not a field of well {well} (fields 0-{fields - 1})"
            )
        plan = compile_pipeline(
            pipeline,
            plate,
            [well],
            device=self._device,
            code=msg.pipeline_code,
            gpu_oom=self.h.config.execution.gpu_oom,
        )
        size = max(16, min(msg.max_size, 4096))
        carried = plate if is_omero_ref(msg.plate) else None
        task = PreviewTask(plan, well, msg.upto, msg.site, size, carried)
        started = time.perf_counter()
        identity = peer.routing_id

        def reply(status: str, payload: Any) -> None:
            if status != "ok":
                kind, message, _trace = payload or (
                    "Cancelled",
                    "preview cancelled",
                    "",
                )
                error = OpenHCSError(f"preview of {well} failed: {kind}: {message}")
                error.code = (
                    "well_timeout" if kind == "well_timeout" else "execution_error"
                )
                self.h.server.reply_later(identity, error_reply(error, msg.rid))
                return
            result: PreviewResult = payload
            packer = ArrayPacker()
            refs = [packer.add(name, image) for name, image in result.images.items()]
            answer = PreviewReply(
                rid=msg.rid,
                well=result.well,
                step_names=list(result.step_names),
                images=refs,
                measurements={k: float(v) for k, v in result.summary.items()},
                objects=int(result.summary.get("count", 0)),
                site=result.site,
                elapsed=time.perf_counter() - started,
            )
            self.h.server.reply_later(identity, answer, packer.buffers)

        self.h.scheduler.preview(PreviewJob(task, reply, peer.user))
        self.h.audit.record(peer, "preview", "accepted", plate=msg.plate)

    # -- restarts ----------------------------------------------------------------

    def resume(self, execution_ids: list[str]) -> None:
        """Queue again what a stopped or crashed server left unfinished."""
        for execution_id in execution_ids:
            record = self.h.store.get_execution(execution_id)
            if record is None:
                continue
            if is_omero_ref(record.plate):
                if self.h.omero is None or record.omero_user is None:
                    self._fail(record, "OMERO is not configured on this server now")
                    continue
                with self._lock:
                    waiting = self._waiting.setdefault(
                        (record.user, record.omero_user), []
                    )
                    waiting.append(execution_id)
                log.info("execution %s %s", execution_id, _WAITING)
                continue
            try:
                self._requeue(record, self.h.plates.open(record.plate), None)
            except (OpenHCSError, PlateError) as exc:
                log.warning("execution %s cannot resume: %s", execution_id, exc)
                self._fail(record, f"cannot resume after a restart: {exc}")

    def note(self, execution_id: str) -> str | None:
        """Why a queued execution is not moving, if it is waiting for someone."""
        with self._lock:
            if any(execution_id in ids for ids in self._waiting.values()):
                return _WAITING
        return None

    def forget_waiting(self, execution_id: str) -> None:
        """A waiting execution was cancelled."""
        with self._lock:
            for ids in self._waiting.values():
                if execution_id in ids:
                    ids.remove(execution_id)

    def _resume_waiting(self, peer: Peer) -> None:
        assert peer.omero_user is not None and self.h.omero is not None
        with self._lock:
            ids = self._waiting.pop((peer.user, peer.omero_user), [])
        for execution_id in ids:
            record = self.h.store.get_execution(execution_id)
            if record is None:
                continue
            try:
                plate = self.h.omero.open(record.plate, peer.omero_key)
                self.h.omero.hold(peer.omero_key, execution_id)
                self._requeue(record, plate, plate)
                log.info(
                    "execution %s resumes with %s's session", execution_id, peer.user
                )
            except (OpenHCSError, PlateError) as exc:
                self._fail(record, f"cannot resume after a restart: {exc}")

    def _requeue(
        self, record: ExecutionRecord, plate: Plate, carried: Plate | None
    ) -> None:
        pipeline = self.h.trust.load(
            record.pipeline_code, self.h.catalogue, record.user
        )
        wells = [w.well for w in self.h.store.wells(record.id)]
        plan = compile_pipeline(
            pipeline,
            plate,
            wells,
            device=self._device,
            code=record.pipeline_code,
            gpu_oom=self.h.config.execution.gpu_oom,
        )
        pending = self.h.store.pending_wells(record.id)
        preview_size = int(record.options.get("preview_size", 256))
        out = self.h.results_root / record.id
        active = _active(record, plan, out, preview_size, pending)
        active.done, active.failed = record.done, record.failed
        active.plate = carried
        log.info("execution %s resumes: %d wells left", record.id, len(pending))
        if active.pending:
            self.h.scheduler.enqueue(active)
        else:  # the crash came between the last well and the tables
            self.h.scheduler.finish_now(active)

    def _fail(self, record: ExecutionRecord, error: str) -> None:
        event = finished_draft(record, "failed", error)
        stored = self.h.store.set_execution_state(
            record.id, ExecutionTrigger.FAIL, error=error, event=event
        )
        if stored is not None:
            self.h.server.publish(stored)

    # -- scheduler hooks -------------------------------------------------------------

    def audit_finished(self, execution_id: str, state: str, error: str | None) -> None:
        """Audit the end of an execution."""
        record = self.h.store.get_execution(execution_id)
        if record is None:
            return
        self.h.audit.record(
            None,
            "finish",
            state,
            user=record.user,
            execution_id=execution_id,
            plate=record.plate,
            pipeline_hash=record.pipeline_hash,
            detail={"done": record.done, "failed": record.failed, "error": error},
        )

    def after_finalize(self, active: ActiveExecution) -> str | None:
        """Write an OMERO execution's results back as its user."""
        if self.h.omero is None or not is_omero_ref(active.plan.plate_ref):
            return None
        return self.h.omero.write_back(active.id, self.h.results_root)


#: Previews travel in every WellDone event: their size bounds an event's bytes.
_MAX_PREVIEW = 1024


def _preview_size(asked: int) -> int:
    """The preview size actually used: 0 (none) or 16 to ``_MAX_PREVIEW`` pixels."""
    return 0 if asked <= 0 else max(16, min(asked, _MAX_PREVIEW))


def _active(
    record: ExecutionRecord,
    plan: Any,
    out: Path,
    preview_size: int,
    pending: Sequence[str] | None = None,
) -> ActiveExecution:
    """The scheduler's view of a run: its wells to do, behind any plate phase."""
    active = ActiveExecution(
        id=record.id,
        user=record.user,
        plan=plan,
        out=out,
        preview_size=preview_size,
        pending=deque(plan.wells if pending is None else pending),
        total=len(plan.wells),
    )
    prepare_phase(active)
    return active
