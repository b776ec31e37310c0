"""Per-object area and intensity on the device, from labelled sums.

The regionprops-like part of a measurement that is a pure reduction over
labels: area, centroid, integrated / mean / min / max intensity and the
population standard deviation, for every channel of a field in one pass
(``bincount`` over channel-offset ids, ``ndimage.minimum`` / ``maximum``).
It matches :func:`openhcs_nb.functions._features_intensity.intensity_features`
column for column. The rest of ``measure_objects`` (shape, texture,
neighbours, medians) runs on the CPU; see ``docs/gpu.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openhcs_nb.functions._xp import namespace_of


def object_intensity(labels: Any, stack: Any) -> dict[str, np.ndarray]:
    """Columns for every object present in the 2-D ``labels``, per channel.

    ``stack`` is ``(c, y, x)``; intensity columns are ``(c, objects)``
    arrays, ``label``, ``area`` and the centroids one row per object. All
    come back as host arrays.
    """
    ns = namespace_of(stack)
    xp = ns.xp
    labels = xp.asarray(labels)
    channels = stack.shape[0]
    width = int(labels.max()) + 1
    area_all = xp.bincount(labels.ravel(), minlength=width)
    present = xp.flatnonzero(area_all)
    present = present[present > 0]
    area = area_all[present].astype(xp.float64)
    ys, xs = xp.indices(labels.shape, dtype=xp.float64)
    cy = xp.bincount(labels.ravel(), weights=ys.ravel(), minlength=width)[present]
    cx = xp.bincount(labels.ravel(), weights=xs.ravel(), minlength=width)[present]
    ids = labels[None].astype(xp.int64) + (xp.arange(channels) * width)[:, None, None]
    ids = xp.broadcast_to(ids, stack.shape).ravel()
    values = stack.astype(xp.float64).ravel()
    total = xp.bincount(ids, weights=values, minlength=channels * width)
    total = total.reshape(channels, width)[:, present]
    mean = total / area
    per_id = xp.zeros(channels * width, dtype=xp.float64)
    keys = (xp.arange(channels)[:, None] * width + present[None]).ravel()
    per_id[keys] = mean.ravel()
    centred = values - per_id[ids]
    square = xp.bincount(ids, weights=centred * centred, minlength=channels * width)
    spread = square.reshape(channels, width)[:, present] / area
    low = ns.ndi.minimum(values, ids, keys).reshape(channels, -1)
    high = ns.ndi.maximum(values, ids, keys).reshape(channels, -1)
    out = {
        "label": present.astype(xp.int32),
        "area": area,
        "centroid_y": cy / area,
        "centroid_x": cx / area,
        "intensity_integrated": total,
        "intensity_mean": mean,
        "intensity_min": xp.asarray(low, dtype=xp.float64),
        "intensity_max": xp.asarray(high, dtype=xp.float64),
        "intensity_std": xp.sqrt(spread),
    }
    return {key: np.asarray(ns.to_host(value)) for key, value in out.items()}


#: The columns of ``intensity_features`` :func:`object_intensity` computes.
DEVICE_INTENSITY = (
    "intensity_mean",
    "intensity_std",
    "intensity_min",
    "intensity_max",
    "intensity_integrated",
)


def host_intensity(labels: np.ndarray, plane: np.ndarray) -> dict[str, np.ndarray]:
    """The intensity columns the device does not compute, on the host.

    The median (one sort per object), the mean over edge pixels and the mass
    displacement, defined as in :func:`intensity_features`.
    """
    from openhcs_nb.functions._features_intensity import (
        _order_statistics,
        edge_mask,
    )
    from openhcs_nb.functions._features_shape import check_plane, object_index

    present, index, which = object_index(labels)
    n = present.size
    values = check_plane(plane, labels.shape, "measure_objects").ravel()[index]
    ys, xs = np.divmod(index, labels.shape[1])
    area = np.bincount(which, minlength=n).astype(np.float64)
    total = np.bincount(which, weights=values, minlength=n)
    edge = edge_mask(labels).ravel()[index]
    edge_count = np.bincount(which[edge], minlength=n)
    edge_total = np.bincount(which[edge], weights=values[edge], minlength=n)
    _, median, _ = _order_statistics(which, values, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = np.bincount(which, weights=ys, minlength=n) / area
        cx = np.bincount(which, weights=xs, minlength=n) / area
        weighted = np.where(total != 0, total, np.nan)
        wy = np.bincount(which, weights=ys * values, minlength=n) / weighted
        wx = np.bincount(which, weights=xs * values, minlength=n) / weighted
        edge_mean = np.where(edge_count > 0, edge_total / edge_count, np.nan)
    return {
        "intensity_median": median,
        "intensity_edge_mean": edge_mean,
        "mass_displacement": np.hypot(wy - cy, wx - cx),
    }


def measure_objects(
    stack: Any,
    *,
    objects: str = "",
    shape: bool = True,
    intensity: bool = True,
    texture: bool = False,
    texture_scale: int = 3,
    granularity: bool = False,
    radial: bool = False,
    colocalisation: bool = False,
    neighbour_distance: float = 0.0,
    parent: Any = "",
    children: Any = "",
    labels: Any = None,
    names: tuple[str, ...] = (),
) -> tuple[Any, dict[str, Any]]:
    """``measure_objects`` with its sums over labels on the stack's device.

    Area, centroids and the integrated / mean / min / max / std intensity
    of every channel come from :func:`object_intensity` where the stack
    lives; shape, the median and edge features, texture and the other
    groups are computed from host copies, as on the CPU. The stack passes
    through; the table comes back as host arrays. ``objects`` is the
    labels set's name, already swapped for ``labels`` by the runner.
    """
    from openhcs_nb.functions._measure import measure_with

    del objects
    ns = namespace_of(stack)
    covered = None
    if labels is not None:
        plane = ns.xp.asarray(labels)
        plane = plane[0] if plane.ndim == 3 and plane.shape[0] == 1 else plane
        if plane.ndim == 2 and plane.shape == tuple(stack.shape[1:]):
            covered = object_intensity(plane, stack)
    host_labels = None if labels is None else ns.to_host(labels)
    table = measure_with(
        ns.to_host(stack),
        host_labels,
        covered,
        names=names,
        parent=parent,
        children=children,
        texture_scale=texture_scale,
        neighbour_distance=neighbour_distance,
        shape=shape,
        intensity=intensity,
        texture=texture,
        granularity=granularity,
        radial=radial,
        colocalisation=colocalisation,
    )
    return stack, {"objects": table}
