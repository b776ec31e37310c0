"""Annotations on the plate: links, provenance, and finding earlier outputs.

Every object openhcs-nb writes to OMERO (table annotations, the pipeline file,
the provenance MapAnnotation, mask ROIs) carries the same description
:func:`marker`: ``openhcs-nb execution=<id> pipeline=<hash>``. That is how a
later run of the *same* pipeline finds what to replace, without touching the
outputs of other pipelines or anything a person attached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from openhcs_nb.omero.gateway import ALL_GROUPS, Gateway, load_omero, parameters

PROVENANCE_NS = "openhcs-nb/provenance"
PIPELINE_NS = "openhcs-nb/pipeline"
_MARKER = re.compile(r"^openhcs-nb execution=(\S+) pipeline=(\S+)")

ANNOTATIONS_QUERY = (
    "select l from PlateAnnotationLink l join fetch l.child a"
    " where l.parent.id = :pid and a.ns in (:nss)"
)
ROIS_QUERY = (
    "select r from Roi r where r.image.id in (:ids) and r.description like :marker"
)


def marker(execution_id: str, pipeline_hash: str) -> str:
    """The description that tags every object one execution writes."""
    return f"openhcs-nb execution={execution_id} pipeline={pipeline_hash}"


def parse_marker(text: str | None) -> tuple[str, str] | None:
    """``(execution id, pipeline hash)`` from a description, or None."""
    match = _MARKER.match(text or "")
    return (match.group(1), match.group(2)) if match else None


def link_to_plate(
    gateway: Gateway, plate_id: int, annotation: Any, ctx: dict[str, str] | None
) -> int:
    """Save a PlateAnnotationLink (and the annotation if new) in the plate's group.

    Returns the annotation id.
    """
    model = load_omero().model
    link = model.PlateAnnotationLinkI()
    link.parent = model.PlateI(plate_id, False)
    link.child = annotation
    saved = gateway.getUpdateService().saveAndReturnObject(link, ctx)
    return int(saved.child.id.val)  # the server returns the child with its id


def file_annotation(original_file: Any, ns: str, description: str) -> Any:
    """A FileAnnotation of an existing OriginalFile (a table, say)."""
    from omero.rtypes import rstring

    model = load_omero().model
    annotation = model.FileAnnotationI()
    annotation.file = model.OriginalFileI(original_file.id.val, False)
    annotation.ns = rstring(ns)
    annotation.description = rstring(description)
    return annotation


def map_annotation(values: dict[str, str], ns: str, description: str) -> Any:
    """A MapAnnotation of key/value pairs (shown as a table in OMERO.web)."""
    from omero.rtypes import rstring

    model = load_omero().model
    annotation = model.MapAnnotationI()
    annotation.ns = rstring(ns)
    annotation.description = rstring(description)
    annotation.setMapValue([model.NamedValue(k, str(v)) for k, v in values.items()])
    return annotation


@dataclass(frozen=True)
class Previous:
    """Earlier openhcs-nb outputs of one pipeline on one plate."""

    annotations: tuple[int, ...]
    rois: tuple[int, ...]
    executions: tuple[str, ...]


def previous_outputs(
    gateway: Gateway,
    plate_id: int,
    image_ids: list[int],
    pipeline_hash: str,
    keep: set[int],
    namespaces: tuple[str, ...],
) -> Previous:
    """Annotations and ROIs tagged with ``pipeline_hash``, except ids in ``keep``.

    ``keep`` holds what the current write-back just created, so re-running the
    write-back of one execution replaces its own earlier copy too.
    """
    query = gateway.getQueryService()
    links = query.findAllByQuery(
        ANNOTATIONS_QUERY, parameters(pid=plate_id, nss=list(namespaces)), ALL_GROUPS
    )
    annotations: set[int] = set()
    executions: set[str] = set()
    for link in links:
        child = link.child
        found = parse_marker(_text(child.description))
        oid = int(child.id.val)
        same = found is not None and found[1] == pipeline_hash
        if same and _text(child.ns) in namespaces and oid not in keep:
            annotations.add(oid)
            executions.add(found[0])  # type: ignore[index]
    rois: set[int] = set()
    if image_ids:
        like = f"openhcs-nb execution=% pipeline={pipeline_hash}%"
        for roi in query.findAllByQuery(
            ROIS_QUERY, parameters(ids=image_ids, marker=like), ALL_GROUPS
        ):
            found = parse_marker(_text(roi.description))
            oid = int(roi.id.val)
            if found is not None and found[1] == pipeline_hash and oid not in keep:
                rois.add(oid)
                executions.add(found[0])
    return Previous(
        tuple(sorted(annotations)), tuple(sorted(rois)), tuple(sorted(executions))
    )


def _text(rtype: Any) -> str:
    return "" if rtype is None else str(getattr(rtype, "val", rtype) or "")


def delete(gateway: Gateway, annotations: list[int], rois: list[int]) -> None:
    """Delete annotations (with their files and links) and ROIs, waiting for both."""
    if annotations:
        gateway.deleteObjects("Annotation", annotations, deleteAnns=True, wait=True)
    if rois:
        gateway.deleteObjects("Roi", rois, wait=True)
