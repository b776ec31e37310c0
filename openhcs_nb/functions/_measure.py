"""Per-object measurements from a label image and the planes of one field.

Every statistic is a weighted ``bincount`` over the foreground pixels only,
which is several times faster than ``regionprops`` and returns plain columns.
"""

from __future__ import annotations

import numpy as np

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._common import as_labels_plane, as_stack
from openhcs_nb.pipeline.catalogue import Function

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


def _measure_objects(
    stack: np.ndarray, *, labels: object = None, names: tuple[str, ...] = ()
) -> tuple[np.ndarray, dict[str, Table]]:
    """Measure each labelled object in every plane; the stack passes through."""
    stack = as_stack(stack, "measure_objects")
    plane_labels = as_labels_plane(labels, stack.shape[1:], "measure_objects")
    columns = _column_names(tuple(names), stack.shape[0])
    return stack, {"objects": object_table(stack, plane_labels, columns)}


measure_objects = Function(
    name="measure_objects",
    version="1",
    impl=_measure_objects,
    help=(
        "Measure each object (area, centroid, mean intensity in every plane) "
        "into an 'objects' table; the image passes through."
    ),
    category="measure",
    input="image",
    output="image",
    side_outputs=("objects",),
    needs_labels=True,
    needs_context=True,
)
