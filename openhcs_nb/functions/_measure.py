"""Per-object measurements from a label image and the planes of one field.

Every statistic is a weighted ``bincount`` over the foreground pixels only,
which is several times faster than ``regionprops`` and returns plain columns.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from msgspec import Meta

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._common import as_labels_plane, as_stack, labels_argument
from openhcs_nb.functions._measure_table import (
    FeatureGroups,
    feature_table,
    relationships,
)
from openhcs_nb.spec import Function, LabelsName, OptionalLabelsName

Table = dict[str, np.ndarray]


def _column_names(names: tuple[str, ...], count: int) -> tuple[str, ...]:
    """Plane names for the intensity columns; planes are numbered when unnamed."""
    if not names:
        return tuple(str(i) for i in range(count))
    if len(names) != count:
        raise PipelineError(
            f"measure_objects got {len(names)} plane names for {count} planes",
            field="names",
        )
    if len(set(names)) != len(names):
        raise PipelineError(
            f"measure_objects got duplicate plane names {list(names)}", field="names"
        )
    return tuple(str(name) for name in names)


def object_table(
    stack: np.ndarray, labels: np.ndarray, names: tuple[str, ...]
) -> Table:
    """Label, area, centroid and mean intensity per plane, one row per object."""
    width = labels.shape[1]
    flat = labels.ravel()
    index = np.flatnonzero(flat)
    which = flat[index].astype(np.intp)
    size = int(which.max()) + 1 if which.size else 1
    counts = np.bincount(which, minlength=size)
    present = np.flatnonzero(counts)
    present = present[present > 0]
    area = counts[present].astype(np.int64)
    denominator = area.astype(np.float64)
    ys, xs = np.divmod(index, width)
    table: Table = {
        "label": present.astype(np.int32),
        "area": area,
        "centroid_y": np.bincount(which, weights=ys, minlength=size)[present]
        / denominator,
        "centroid_x": np.bincount(which, weights=xs, minlength=size)[present]
        / denominator,
    }
    for name, plane in zip(names, stack, strict=True):
        values = plane.ravel()[index]
        sums = np.bincount(which, weights=values, minlength=size)[present]
        table[f"intensity_mean_{name}"] = (sums / denominator).astype(np.float64)
    return table


def _plane(value: object, param: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """A labels reference the runner resolved to ``(1, y, x)``, as one plane."""
    planes = labels_argument(value, param, "measure_objects")
    return None if planes is None else as_labels_plane(planes, shape, "measure_objects")


def _measure_objects(
    stack: np.ndarray,
    *,
    objects: Annotated[
        LabelsName, Meta(description="the labels set to measure; empty: the latest")
    ] = "",
    shape: Annotated[bool, Meta(description="size and shape features")] = True,
    intensity: Annotated[
        bool, Meta(description="mean, median, std, min, max, edge, integrated")
    ] = True,
    texture: Annotated[bool, Meta(description="Haralick texture features")] = False,
    texture_scale: Annotated[
        int, Meta(ge=1, le=32, description="Haralick pixel offset (pixels)")
    ] = 3,
    granularity: Annotated[bool, Meta(description="granularity spectrum")] = False,
    radial: Annotated[
        bool, Meta(description="intensity fraction in rings, centre to edge")
    ] = False,
    colocalisation: Annotated[
        bool, Meta(description="Pearson and Manders between every channel pair")
    ] = False,
    neighbour_distance: Annotated[
        float,
        Meta(ge=0, le=200, description="count neighbours this close (px); 0: off"),
    ] = 0.0,
    parent: Annotated[
        OptionalLabelsName,
        Meta(description="a labels set whose overlapping object is the parent"),
    ] = "",
    children: Annotated[
        OptionalLabelsName,
        Meta(description="a labels set whose objects are counted as children"),
    ] = "",
    labels: object = None,
    names: tuple[str, ...] = (),
) -> tuple[np.ndarray, dict[str, Table]]:
    """Measure each labelled object in every plane; the stack passes through."""
    groups = FeatureGroups(
        shape=shape,
        intensity=intensity,
        texture=texture,
        texture_scale=texture_scale,
        granularity=granularity,
        radial=radial,
        colocalisation=colocalisation,
        neighbour_distance=neighbour_distance,
    )
    table = _table(stack, labels, names, groups, parent, children, None)
    return stack, {"objects": table}


def measure_with(
    stack: np.ndarray,
    labels: object,
    covered: Table | None,
    *,
    names: tuple[str, ...] = (),
    objects: object = None,  # the runner's name for ``labels``; unused
    parent: object = None,
    children: object = None,
    texture_scale: int = 3,
    neighbour_distance: float = 0.0,
    **flags: bool,
) -> Table:
    """The object table, with ``covered`` columns computed on a device.

    ``covered`` is :func:`~openhcs_nb.functions._device_measure.object_intensity`'s
    output (or None); the device twin of ``measure_objects`` calls this.
    """
    groups = FeatureGroups(
        texture_scale=texture_scale, neighbour_distance=neighbour_distance, **flags
    )
    return _table(stack, labels, names, groups, parent, children, covered)


def _table(
    stack: np.ndarray,
    labels: object,
    names: tuple[str, ...],
    groups: FeatureGroups,
    parent: object,
    children: object,
    covered: Table | None,
) -> Table:
    stack = as_stack(stack, "measure_objects")
    field_shape = stack.shape[1:]
    plane_labels = as_labels_plane(labels, field_shape, "measure_objects")
    columns = _column_names(tuple(names), stack.shape[0])
    table = feature_table(stack, plane_labels, columns, groups, covered)
    parents = _plane(parent, "parent", field_shape)
    kids = _plane(children, "children", field_shape)
    table |= relationships(
        plane_labels,
        None if parents is None else (_ref_name(parent, "parent"), parents),
        None if kids is None else (_ref_name(children, "children"), kids),
    )
    return table


def _ref_name(value: object, fallback: str) -> str:
    """The set name for a relationship column.

    The runner swaps names for planes, so the name travels on the array.
    """
    return str(getattr(value, "labels_name", fallback))


measure_objects = Function(
    name="measure_objects",
    version="2",
    impl=_measure_objects,
    help=(
        "Measure each object of a labels set (size and shape, intensity per "
        "channel, optionally texture, granularity, radial distribution, "
        "colocalisation, neighbours, parent and children) into an 'objects' "
        "table; the image passes through."
    ),
    category="measure",
    input="image",
    output="image",
    side_outputs=("objects",),
    needs_labels=True,
    needs_context=True,
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:measure_objects",
)
