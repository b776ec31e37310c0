"""One field's object table: the feature groups a measurement step asked for.

The features themselves live in the ``_features_*`` modules, each checked
against scikit-image or CellProfiler's definitions; this module only picks
the groups, names the columns per channel (``intensity_mean_DAPI``) and adds
the relationships between object sets (a cell's nucleus, a nucleus's cells).
Every group's rows are aligned to the sorted labels of the plane, so columns
join without a merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from openhcs_nb.functions._device_measure import DEVICE_INTENSITY
from openhcs_nb.functions._features_coloc import colocalisation
from openhcs_nb.functions._features_intensity import intensity_features
from openhcs_nb.functions._features_neighbours import neighbour_features
from openhcs_nb.functions._features_shape import present_labels, shape_features
from openhcs_nb.functions._features_texture import (
    granularity,
    haralick_features,
    radial_distribution,
)
from openhcs_nb.functions._relate import children_count, parent_of

Table = dict[str, np.ndarray]
#: The column order of ``intensity_features``, kept by the device path.
INTENSITY_ORDER = (
    "label",
    "intensity_mean",
    "intensity_median",
    "intensity_std",
    "intensity_min",
    "intensity_max",
    "intensity_integrated",
    "intensity_edge_mean",
    "mass_displacement",
)


@dataclass(frozen=True)
class FeatureGroups:
    """Which feature groups to measure (one flag or setting per group)."""

    shape: bool = True
    intensity: bool = True
    texture: bool = False
    texture_scale: int = 3
    granularity: bool = False
    radial: bool = False
    colocalisation: bool = False
    neighbour_distance: float = 0.0  # 0: neighbours are not measured


def _suffixed(table: Table, suffix: str) -> Table:
    return {f"{k}_{suffix}": v for k, v in table.items() if k != "label"}


def feature_table(
    stack: np.ndarray,
    labels: np.ndarray,
    names: tuple[str, ...],
    groups: FeatureGroups,
    covered: Table | None = None,
) -> Table:
    """Every asked-for feature of every object in ``labels``, one row each.

    ``stack`` holds one plane per channel of the field, named by ``names``.
    ``covered``: area, centroids and per-channel intensity sums already
    computed on a device (``_device_measure.object_intensity``); those
    columns are taken from it instead of being computed here.
    """
    present = present_labels(labels)
    table: Table = {"label": present.astype(np.int32)}
    if groups.shape:
        shape = shape_features(labels)
        table |= {k: v for k, v in shape.items() if k != "label"}
    else:  # positions are always wanted: the viewer and OMERO ROIs use them
        where = covered if covered is not None else shape_features(labels)
        for key in ("area", "centroid_y", "centroid_x"):
            table[key] = where[key]
    table["area"] = np.asarray(table["area"]).astype(np.int64)  # a pixel count
    if groups.neighbour_distance > 0:
        near = neighbour_features(labels, distance=groups.neighbour_distance)
        table |= {k: v for k, v in near.items() if k != "label"}
    for channel, (name, plane) in enumerate(zip(names, stack, strict=True)):
        if covered is not None:
            table |= _suffixed(
                _on_device(covered, channel, labels, plane, groups), name
            )
        elif groups.intensity:
            table |= _suffixed(intensity_features(labels, plane), name)
        else:
            mean = intensity_features(labels, plane)["intensity_mean"]
            table[f"intensity_mean_{name}"] = mean
        if groups.texture:
            texture = haralick_features(labels, plane, scale=groups.texture_scale)
            table |= _suffixed(texture, name)
        if groups.granularity:
            table |= _suffixed(granularity(labels, plane), name)
        if groups.radial:
            table |= _suffixed(radial_distribution(labels, plane), name)
    if groups.colocalisation:
        for (na, a), (nb, b) in combinations(zip(names, stack, strict=True), 2):
            table |= _suffixed(colocalisation(labels, a, b), f"{na}_{nb}")
    return table


def _on_device(
    covered: Table,
    channel: int,
    labels: np.ndarray,
    plane: np.ndarray,
    groups: FeatureGroups,
) -> Table:
    """One channel's intensity columns from the device sums, in the CPU's order."""
    from openhcs_nb.functions._device_measure import host_intensity

    sums = {key: covered[key][channel] for key in DEVICE_INTENSITY}
    if not groups.intensity:
        return {"label": covered["label"], "intensity_mean": sums["intensity_mean"]}
    rest = host_intensity(labels, plane)
    columns = {"label": covered["label"], **sums, **rest}
    return {key: columns[key] for key in INTENSITY_ORDER}


def relationships(
    labels: np.ndarray,
    parent: tuple[str, np.ndarray] | None,
    children: tuple[str, np.ndarray] | None,
) -> Table:
    """``parent_<set>`` (the parent id, 0 for none) and ``children_<set>_count``.

    The parent is the object of the other set that overlaps most; children
    are the objects of the other set whose parent this object is.
    """
    out: Table = {}
    if parent is not None:
        name, planes = parent
        out[f"parent_{name}"] = parent_of(labels, planes).astype(np.int32)
    if children is not None:
        name, planes = children
        out[f"children_{name}_count"] = children_count(labels, planes).astype(np.int32)
    return out
