"""The pieces one write-back attempt writes, each recording what it created.

Split from :mod:`openhcs_nb.omero.writeback`, which orders them, rolls back a
failed attempt and retries; see there for what is written and why.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from openhcs_nb.omero import _annotations as ann
from openhcs_nb.omero._rois import mask_rois
from openhcs_nb.omero._tables import (
    BULK_NS,
    OBJECTS_NS,
    Column,
    id_column,
    measurement_columns,
    write_table,
)
from openhcs_nb.omero.gateway import group_ctx, load_omero
from openhcs_nb.omero.session import OmeroSession

if TYPE_CHECKING:
    from openhcs_nb.omero.writeback import WritebackReport

log = logging.getLogger(__name__)


@dataclass
class Created:
    """Ids of what the current attempt saved, for rollback and for ``keep``."""

    annotations: list[int] = field(default_factory=list)
    rois: list[int] = field(default_factory=list)


@dataclass
class Target:
    """Where one attempt writes (plate, group, tag) and what it wrote so far."""

    session: OmeroSession
    meta: Any  # openhcs_nb.plates._omero_meta.PlateMeta
    tag: str
    report: WritebackReport
    created: Created = field(default_factory=Created)

    @property
    def ctx(self) -> dict[str, str] | None:
        """Writes name the plate's group (the session's may be another)."""
        return group_ctx(self.meta.group_id)

    @property
    def plate_id(self) -> int:
        """The OMERO Plate id."""
        return int(self.meta.plate_id)


RoiKey = tuple[str, str, int, int, int, int]  # set, well, site, t, z, label


def write_rois(target: Target, store: Path) -> dict[RoiKey, int]:
    """Mask ROIs per field; ``(set, well, site, t, z, label) -> roi id``."""
    out: dict[RoiKey, int] = {}
    settings, report = target.session.settings, target.report
    if settings.labels != "rois":
        return out
    update = target.session.gateway.getUpdateService()
    for (well, site), image in sorted(target.meta.images.items()):
        for index, (name, labels) in enumerate(_labels(store, well, site).items()):
            rois, keys = mask_rois(labels, image.image_id, name, target.tag, index)
            if len(rois) > settings.max_rois_per_image:
                report.errors.append(
                    f"{well} field {site} {name}: {len(rois)} objects, more than "
                    f"max_rois_per_image={settings.max_rois_per_image}; "
                    "no ROIs written for it"
                )
                continue
            if not rois:
                continue
            saved = update.saveAndReturnArray(rois, target.ctx)
            ids = [int(r.id.val) for r in saved]
            target.created.rois.extend(ids)
            out.update(
                {(name, well, site, *k): i for k, i in zip(keys, ids, strict=True)}
            )
    report.rois = len(target.created.rois)
    return out


def _labels(store: Path, well: str, site: int) -> dict[str, np.ndarray]:
    """``name -> (t, z, y, x)`` label arrays of one field of the results store."""
    import zarr

    from openhcs_nb.plates.model import split_well
    from openhcs_nb.results.store import ZARR_NAME

    row, col = split_well(well)
    path = store / ZARR_NAME / row / str(col) / str(site) / "labels"
    if not path.is_dir():
        return {}
    group = zarr.open_group(str(path), mode="r")
    return {
        name: np.asarray(group[name]["0"])[:, 0]
        for name in group.attrs.get("labels", [])
    }


def write_tables(target: Target, results: Any, roi_ids: dict[RoiKey, int]) -> None:
    """The per-well (bulk annotation) table and, if asked, the per-object one."""
    meta, report = target.meta, target.report
    wells = results.wells[results.wells["well"].isin(meta.well_ids)]
    if not wells.empty:
        names = list(wells["well"])
        columns = [
            id_column("PlateColumn", "Plate", [meta.plate_id] * len(names)),
            id_column("WellColumn", "Well", [meta.well_ids[w] for w in names]),
            id_column(
                "ImageColumn", "Image", [meta.images[(w, 0)].image_id for w in names]
            ),
            Column("StringColumn", "Well Name", names),
            *measurement_columns(wells, skip=("well", "row", "column")),
        ]
        report.well_table = _table(target, "openhcs-nb wells", columns, BULK_NS)
    objects = results.objects
    if target.session.settings.object_table and len(objects) and "site" in objects:
        fields = list(zip(objects["well"], objects["site"].astype(int), strict=True))
        objects = objects[[key in meta.images for key in fields]]
        keys = list(zip(objects["well"], objects["site"].astype(int), strict=True))
        columns = [
            id_column("PlateColumn", "Plate", [meta.plate_id] * len(keys)),
            id_column("WellColumn", "Well", [meta.well_ids[w] for w, _ in keys]),
            id_column("ImageColumn", "Image", [meta.images[k].image_id for k in keys]),
            Column("StringColumn", "Well Name", [w for w, _ in keys]),
        ]
        if roi_ids and {"label", "t", "z"} <= set(objects.columns):
            # Rows name their object set; tables from before object sets
            # belong to the last labels set written.
            last = sorted({k[0] for k in roi_ids})[-1] if roi_ids else ""
            sets = (
                objects["object_set"].astype(str)
                if "object_set" in objects
                else [last] * len(objects)
            )
            planes = zip(
                sets,
                keys,
                objects["t"].astype(int),
                objects["z"].astype(int),
                objects["label"].astype(int),
                strict=True,
            )
            rois = [roi_ids.get((o, w, s, t, z, n)) for o, (w, s), t, z, n in planes]
            if all(r is not None for r in rois):
                columns.append(id_column("RoiColumn", "Roi", rois))  # type: ignore[arg-type]
        columns += measurement_columns(objects, skip=("well",))
        report.object_table = _table(target, "openhcs-nb objects", columns, OBJECTS_NS)


def _table(target: Target, name: str, columns: list[Column], ns: str) -> int:
    gateway = target.session.gateway
    original = write_table(gateway, name, columns, target.ctx)
    annotation = ann.file_annotation(original, ns, target.tag)
    annotation_id = ann.link_to_plate(gateway, target.plate_id, annotation, target.ctx)
    target.created.annotations.append(annotation_id)
    return annotation_id


def write_pipeline(target: Target, store: Path) -> None:
    """The pipeline code as a FileAnnotation (uploaded in the plate's group)."""
    code = store / "pipeline.py"
    tag = target.tag
    phash = ann.parse_marker(tag)[1]  # type: ignore[index]
    wrapper = target.session.gateway.createFileAnnfromLocalFile(
        str(code),
        origFilePathAndName=f"openhcs-nb/pipeline_{phash}.py",
        mimetype="text/x-python",
        ns=ann.PIPELINE_NS,
        desc=tag,
    )
    annotation_id = int(wrapper.getId())
    target.created.annotations.append(annotation_id)
    model = load_omero().model
    saved = model.FileAnnotationI(annotation_id, False)
    ann.link_to_plate(target.session.gateway, target.plate_id, saved, target.ctx)
    target.report.pipeline_file = annotation_id


def write_provenance(target: Target, prov: dict[str, Any], results: Any) -> None:
    """The provenance MapAnnotation; written last, it marks a complete write-back."""
    from openhcs_nb import __version__

    session, report = target.session, target.report
    status = results.wells.get("status", [])
    values = {
        "execution_id": prov.get("execution_id", ""),
        "pipeline_name": prov.get("pipeline_name", ""),
        "pipeline_hash": prov.get("pipeline_hash", ""),
        "server_version": prov.get("openhcs_nb_version", __version__),
        "writeback_version": __version__,
        "omero_user": session.user_name,
        "submitted_by": prov.get("user", ""),
        "run_created": prov.get("created", ""),
        "written": dt.datetime.now(dt.timezone.utc).isoformat(),
        "plate": prov.get("plate", ""),
        "wells_done": int((status == "done").sum()) if len(status) else 0,
        "wells_failed": int((status == "failed").sum()) if len(status) else 0,
        "well_table_annotation": report.well_table or "",
        "object_table_annotation": report.object_table or "",
        "pipeline_annotation": report.pipeline_file or "",
        "rois": report.rois,
    }
    annotation = ann.map_annotation(values, ann.PROVENANCE_NS, target.tag)
    report.provenance = ann.link_to_plate(
        session.gateway, target.plate_id, annotation, target.ctx
    )
    target.created.annotations.append(report.provenance)


def rollback(target: Target) -> None:
    """Delete what this attempt created (best effort)."""
    created = target.created
    try:
        ann.delete(target.session.gateway, created.annotations, created.rois)
    except Exception:
        log.exception(
            "could not delete the partial write-back; the next replace "
            "of the same pipeline removes it"
        )
