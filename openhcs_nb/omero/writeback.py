"""Results back to OMERO, as the user who submitted them.

What one execution writes, all linked to (or drawn on) the plate:

1. mask ROIs on each field's image, one per object (``labels = "rois"``);
2. the per-well measurements as an OMERO.tables table with the bulk-annotation
   namespace, so OMERO.web can colour the plate by a measurement;
3. the per-object measurements as a second table (``object_table``), with a
   ``Roi`` column when ROIs were written;
4. the pipeline code as a FileAnnotation (``openhcs-nb/pipeline``);
5. last, a provenance MapAnnotation (``openhcs-nb/provenance``): execution id,
   pipeline hash, server version, user, times, and the ids of 1-4.

Re-running: every object carries the description
``openhcs-nb execution=<id> pipeline=<hash>``. With ``replace`` (the default)
the outputs of *earlier executions of the same pipeline* on that plate are
deleted, and only after the new ones are all written. Other pipelines' outputs
and anything else on the plate are never touched.

Failures never lose results: the local store stays as it is; an attempt that
fails deletes what it had created, and the outcome is recorded in
``<store>/omero_writeback.json``. :func:`writeback_execution` retries, and is
what ``openhcs-server writeback <execution id>`` runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from openhcs_nb.errors import OpenHCSError, UnknownPlateError
from openhcs_nb.omero import _annotations as ann
from openhcs_nb.omero._tables import (
    BULK_NS,
    OBJECTS_NS,
)
from openhcs_nb.omero._writers import (
    Target,
    rollback,
    write_pipeline,
    write_provenance,
    write_rois,
    write_tables,
)
from openhcs_nb.omero.errors import NotAuthorizedError, WritebackError, translate_errors
from openhcs_nb.omero.gateway import GatewayFactory
from openhcs_nb.omero.session import OmeroSession, find_session_key, join_session
from openhcs_nb.omero.settings import OmeroSettings, omero_settings

log = logging.getLogger(__name__)
STATUS_FILE = "omero_writeback.json"
NAMESPACES = (BULK_NS, OBJECTS_NS, ann.PIPELINE_NS, ann.PROVENANCE_NS)


@dataclass
class WritebackReport:
    """What a write-back did (also saved as ``omero_writeback.json``)."""

    execution_id: str
    plate_id: int | None = None
    state: str = "pending"  # "done" | "failed"
    attempts: int = 0
    user: str | None = None
    well_table: int | None = None  # FileAnnotation ids
    object_table: int | None = None
    pipeline_file: int | None = None
    provenance: int | None = None
    rois: int = 0
    replaced_executions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    time: str = ""

    def save(self, store: Path) -> None:
        """Write the report next to the results (atomically)."""
        self.time = dt.datetime.now(dt.timezone.utc).isoformat()
        tmp = store / (STATUS_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        tmp.replace(store / STATUS_FILE)


def write_results(
    session: OmeroSession, store: Path, report: WritebackReport
) -> WritebackReport:
    """One write-back attempt of the results store at ``store``.

    Raises
    ------
    NotAuthorizedError
        The user may not read or annotate the plate.
    SessionInvalidError
        The session expired.
    WritebackError, OpenHCSError
        Anything else; what this attempt created has been deleted again.
    """
    from openhcs_nb.plates.omero import load_plate_meta, parse_ref
    from openhcs_nb.results.store import ResultsStore

    results = ResultsStore(store).load()
    prov = results.provenance
    plate_ref = str(prov.get("plate", ""))
    if not plate_ref.startswith("omero:"):
        raise WritebackError(f"{store}: plate {plate_ref!r} is not an OMERO plate")
    plate_id, acquisition = parse_ref(plate_ref)
    report.plate_id, report.user = plate_id, session.user_name
    execution_id, phash = (
        str(prov.get("execution_id", store.name)),
        prov["pipeline_hash"],
    )
    tag = ann.marker(execution_id, phash)
    gateway = session.gateway
    with (
        session.write_lock,
        translate_errors(f"writing results of {execution_id}", session.where),
    ):
        meta = load_plate_meta(session, plate_id, acquisition)
        if meta.group_id is not None:  # BlitzGateway's helpers write there too
            gateway.SERVICE_OPTS.setOmeroGroup(str(meta.group_id))
        wrapper = gateway.getObject("Plate", plate_id)
        if wrapper is None:
            raise UnknownPlateError(f"OMERO plate {plate_id} is not visible any more")
        if not wrapper.canAnnotate():
            raise NotAuthorizedError(
                f"OMERO user {session.user_name!r} may read but not annotate plate "
                f"{plate_id}; the results stay in {store}"
            )
        target = Target(session, meta, tag, report)
        try:
            roi_ids = write_rois(target, store)
            write_tables(target, results, roi_ids)
            write_pipeline(target, store)
            write_provenance(target, prov, results)
        except BaseException:
            rollback(target)
            raise
        if session.settings.replace:
            image_ids = [i.image_id for i in meta.images.values()]
            keep = {*target.created.annotations, *target.created.rois}
            old = ann.previous_outputs(
                gateway, plate_id, image_ids, phash, keep, NAMESPACES
            )
            ann.delete(gateway, list(old.annotations), list(old.rois))
            report.replaced_executions = list(old.executions)
    report.state = "done"
    return report


def writeback_execution(
    execution_id: str,
    results_root: Path,
    config: Any,
    *,
    session: OmeroSession | None = None,
    session_key: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    factory: GatewayFactory | None = None,
) -> WritebackReport:
    """Write one execution's results to OMERO, retrying; record the outcome.

    Uses ``session`` (the server's joined session of the submitter), else joins
    ``session_key`` or :func:`find_session_key`, through ``factory`` (default:
    omero-py's BlitzGateway). ``config`` is anything :func:`omero_settings`
    accepts (a ServerConfig, its [omero] section...).

    Raises
    ------
    WritebackError
        Every attempt failed, or the results store is missing; the local
        results are untouched and ``omero_writeback.json`` says why.
    NotAuthorizedError, SessionInvalidError
        Retrying cannot help (no right to annotate, no valid session).
    """
    store = Path(results_root) / execution_id
    if not (store / "provenance.json").is_file():
        raise WritebackError(
            f"no results store for execution {execution_id} under {results_root}"
        )
    settings: OmeroSettings = omero_settings(config)
    report = WritebackReport(execution_id)
    owned = session is None
    if session is None:
        key = session_key or find_session_key()
        if not key:
            raise WritebackError(
                f"write-back of {execution_id}: no OMERO session key "
                "(set OMERO_SESSION_KEY to a session of the submitting user)"
            )
        session = join_session(key, config=settings, factory=factory)
    try:
        return _attempts(session, store, report, settings, sleep)
    finally:
        if owned:
            session.close()


def _attempts(
    session: OmeroSession,
    store: Path,
    report: WritebackReport,
    settings: OmeroSettings,
    sleep: Callable[[float], None],
) -> WritebackReport:
    for attempt in range(max(1, settings.writeback_attempts)):
        report.attempts = attempt + 1
        try:
            write_results(session, store, report)
        except NotAuthorizedError as exc:  # includes an invalid session
            report.state = "failed"
            report.errors.append(str(exc))
            report.save(store)
            raise
        except (OpenHCSError, Exception) as exc:
            report.state = "failed"
            report.errors.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc}")
            report.save(store)
            log.warning("write-back of %s failed: %s", report.execution_id, exc)
            if attempt + 1 < settings.writeback_attempts:
                sleep(settings.retry_delay_s * 2**attempt)
            continue
        report.save(store)
        return report
    raise WritebackError(
        f"write-back of {report.execution_id} failed {report.attempts} times; the "
        f"results stay in {store} (see {STATUS_FILE}); last error: {report.errors[-1]}"
    )
