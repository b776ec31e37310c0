"""Neighbour features per object (CellProfiler MeasureObjectNeighbors).

Definitions used here:

- ``neighbors_count``: the number of other objects with at least one pixel
  whose centre lies within ``distance`` pixels (Euclidean) of a pixel centre
  of this object. It is CellProfiler's "within a specified distance" method
  (dilate the object by a disk of radius ``distance``, count the other labels
  it overlaps), so ``distance=1`` counts 4-connected touching objects and
  ``distance=sqrt(2)`` adds diagonal contacts. The relation is symmetric.
- ``percent_touching``: the percentage of the object's edge pixels (8-neighbour
  outline, as ``intensity_edge_mean``) within ``distance`` of another object.
- ``nearest_neighbor_distance``: distance from the centroid to the nearest
  other object's centroid (NaN when the object is alone), and
  ``nearest_neighbor_label`` that object's label (0 when alone).

Each object is handled in its bounding box grown by ``distance``, with one
distance transform from its own pixels and one from the other objects'.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from openhcs_nb.functions._features_intensity import edge_mask
from openhcs_nb.functions._features_shape import (
    Table,
    check_labels,
    object_index,
    object_slices,
)


def _centroids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Present labels and their (y, x) centroids."""
    present, index, which = object_index(labels)
    ys, xs = np.divmod(index, labels.shape[1])
    area = np.bincount(which, minlength=present.size)
    points = np.stack(
        [
            np.bincount(which, weights=ys, minlength=present.size) / area,
            np.bincount(which, weights=xs, minlength=present.size) / area,
        ],
        axis=1,
    )
    return present, points


def neighbour_features(labels: np.ndarray, *, distance: float) -> Table:
    """Neighbour count, percent touching and nearest centroid distance.

    Raises
    ------
    PipelineError
        ``labels`` is not a 2-D non-negative integer image.
    ValueError
        ``distance`` is negative.
    """
    if distance < 0:
        raise ValueError(f"distance must be >= 0, got {distance}")
    labels = check_labels(labels, "neighbour_features")
    present, points = _centroids(labels)
    n = present.size
    count = np.zeros(n, dtype=np.int64)
    touching = np.zeros(n)
    edges = edge_mask(labels)
    grow = math.ceil(distance) + 1
    height, width = labels.shape
    slices = object_slices(labels, present)
    for row, label in enumerate(present):
        ys, xs = slices[row]
        window = (
            slice(max(ys.start - grow, 0), min(ys.stop + grow, height)),
            slice(max(xs.start - grow, 0), min(xs.stop + grow, width)),
        )
        crop = labels[window]
        own = crop == label
        other = (crop > 0) & ~own
        if not other.any():
            continue
        near = ndi.distance_transform_edt(~own) <= distance
        count[row] = np.unique(crop[near & other]).size
        outline = edges[window] & own
        close = ndi.distance_transform_edt(~other) <= distance
        touching[row] = (
            100.0 * np.count_nonzero(close & outline) / np.count_nonzero(outline)
        )
    nearest = np.full(n, np.nan)
    nearest_label = np.zeros(n, dtype=present.dtype)
    if n > 1:
        found, which = cKDTree(points).query(points, k=2)
        nearest = found[:, 1]
        nearest_label = present[which[:, 1]]
    return {
        "label": present,
        "neighbors_count": count,
        "percent_touching": touching,
        "nearest_neighbor_distance": nearest,
        "nearest_neighbor_label": nearest_label,
    }
