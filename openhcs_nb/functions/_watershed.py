"""Splitting touching objects: peak markers and a seeded watershed per blob.

Each 8-connected blob of the mask is handled on a crop of its bounding box.
A *height* surface is computed on the crop (the Euclidean distance transform
for shape-based splitting, smoothed intensity for intensity-based splitting),
markers are its peaks at least ``min_distance`` apart, and
``skimage.segmentation.watershed`` floods ``-height`` from them inside the
blob. Blobs with a single marker (most of them in a sparse field) skip the
watershed entirely.

Blobs that need a flood are packed side by side (one background pixel apart)
on a small canvas and flooded in one call, up to ``_BATCH_PIXELS`` crop
pixels at a time, since skimage's per-call overhead dominates small blobs; a
blob bigger than that is flooded on its own crop.

Memory is linear in pixels and never grows with the number of markers (the
closed-form partition this module replaced allocated pixels x markers): the
distance map, one window-maximum array and the watershed's buffers (float64
surface, int32 labels, a priority queue of at most one entry per pixel), 34
bytes per pixel of the largest crop or batch at peak. Measured with
tracemalloc on a confluent 2048 x 2048 field (6738 nuclei, one blob's box
covering 71% of the plane): 24.5 bytes per plane pixel, 2.9 s CPU. A single
whole-plane pass took 3.7 s and 36 bytes per pixel, and its window maximum
would let a big nucleus hide the peak of a small neighbour across a
one-pixel gap. On a sparse 1024 x 1024 field (900 nuclei): 0.34 s CPU
against 0.31 s for the closed-form code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.segmentation import watershed

from openhcs_nb.functions._common import FULL_2D

# height(blob, box) -> float surface on the crop; larger is "more central".
Surface = Callable[[np.ndarray, tuple[slice, slice]], np.ndarray]

_BATCH_PIXELS = 1 << 18  # crop pixels flooded per watershed call (~9 MB)
_SHELF_WIDTH = 1024  # canvas width for packing small crops
_FEW_POINTS = 64  # below this, a distance matrix beats a k-d tree


def find_markers(height: np.ndarray, blob: np.ndarray, min_distance: int) -> np.ndarray:
    """Int32 marker image of the peaks of ``height`` inside ``blob``.

    A peak is a connected plateau of pixels equal to the maximum of their
    ``(2 * min_distance + 1)``-square window (taken over the blob only).
    Plateaus closer than ``min_distance`` (Chebyshev, between centroids) to a
    higher one are dropped, highest first, using a k-d tree so a confluent
    blob with thousands of peaks stays fast. Markers are numbered 1..k,
    highest first.
    """
    size = 2 * min_distance + 1
    inside = np.where(blob, height, -np.inf)
    # Two 1-D passes make the square window; cheaper than one 2-D filter.
    local_max = ndi.maximum_filter1d(
        inside, size, axis=0, mode="constant", cval=-np.inf
    )
    ndi.maximum_filter1d(
        local_max, size, axis=1, output=local_max, mode="constant", cval=-np.inf
    )
    peaks = (inside == local_max) & blob
    del local_max
    plateaus, count = ndi.label(peaks, structure=FULL_2D)
    if count <= 1:
        return plateaus.astype(np.int32, copy=False)
    ys, xs = np.nonzero(peaks)
    which = plateaus[ys, xs]
    n = np.bincount(which, minlength=count + 1)[1:].astype(np.float64)
    cy = np.bincount(which, weights=ys, minlength=count + 1)[1:] / n
    cx = np.bincount(which, weights=xs, minlength=count + 1)[1:] / n
    top = np.bincount(which, weights=height[ys, xs], minlength=count + 1)[1:] / n
    order = np.argsort(-top, kind="stable")
    kept = _suppress(np.stack([cy, cx], axis=1), order, min_distance)
    lut = np.zeros(count + 1, dtype=np.int32)
    lut[kept + 1] = np.arange(1, len(kept) + 1, dtype=np.int32)
    return lut[plateaus]


def _suppress(points: np.ndarray, order: np.ndarray, radius: int) -> np.ndarray:
    """Indices of ``points`` kept by greedy suppression in ``order``.

    Close pairs come from a k-d tree, or for a few points (the common case,
    where building a tree costs more) from their small distance matrix.
    """
    if len(points) <= _FEW_POINTS:
        gaps = np.abs(points[:, None, :] - points[None, :, :]).max(axis=2)
        pairs = np.argwhere(np.triu(gaps <= radius, 1))
    else:
        pairs = cKDTree(points).query_pairs(radius, p=np.inf, output_type="ndarray")
    if len(pairs) == 0:
        return order
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    starts = np.searchsorted(both[:, 0], np.arange(len(points) + 1))
    dropped = np.zeros(len(points), dtype=bool)
    kept: list[int] = []
    for i in order:
        if dropped[i]:
            continue
        kept.append(int(i))
        dropped[both[starts[i] : starts[i + 1], 1]] = True
    return np.asarray(kept, dtype=np.intp)


def _distance_surface(blob: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    """EDT of the blob: its peaks are the centres of round parts."""
    del box
    return ndi.distance_transform_edt(blob)


class _Crop(NamedTuple):
    """A blob waiting for its flood: where it is and what to flood it with."""

    label: int
    crop: tuple[slice, slice]
    blob: np.ndarray
    level: np.ndarray
    markers: np.ndarray
    count: int


def _flood(pending: list[_Crop]) -> list[np.ndarray]:
    """Watershed of several crops in one call; regions 1..k per crop.

    The crops are packed on shelves of a canvas, one background pixel apart
    so no flood crosses between them. One call instead of one per crop saves
    skimage's per-call overhead, which dominates small blobs.
    """
    if len(pending) == 1:
        only = pending[0]
        return [watershed(-only.level, only.markers, mask=only.blob, connectivity=2)]
    width = max(_SHELF_WIDTH, *(p.blob.shape[1] for p in pending))
    places: list[tuple[int, int]] = [(0, 0)] * len(pending)
    y = x = shelf = 0
    for i in sorted(range(len(pending)), key=lambda i: -pending[i].blob.shape[0]):
        h, w = pending[i].blob.shape
        if x + w > width:
            y, x, shelf = y + shelf + 1, 0, 0
        places[i] = (y, x)
        x, shelf = x + w + 1, max(shelf, h)
    surface = np.zeros((y + shelf, width))
    seeds = np.zeros((y + shelf, width), dtype=np.int32)
    inside = np.zeros((y + shelf, width), dtype=bool)
    boxes, first = [], 0
    for (top, left), p in zip(places, pending, strict=True):
        box = np.s_[top : top + p.blob.shape[0], left : left + p.blob.shape[1]]
        np.negative(p.level, out=surface[box], where=p.blob)
        np.add(p.markers, first, out=seeds[box], where=p.markers > 0)
        inside[box] = p.blob
        boxes.append((box, first))
        first += p.count
    flooded = watershed(surface, seeds, mask=inside, connectivity=2)
    del surface, seeds, inside
    return [
        np.where(p.blob, flooded[box] - first, 0)
        for (box, first), p in zip(boxes, pending, strict=True)
    ]


def split_blobs(
    mask: np.ndarray,
    min_distance: int,
    out: np.ndarray,
    surface: Surface,
    *,
    nearest: bool = False,
) -> int:
    """Label ``mask`` into ``out``, splitting each blob on ``surface``; return count.

    ``surface`` receives the blob's crop (with one pixel of background margin
    where the plane allows) and the crop's slices into the plane. Markers
    are its peaks; the flood runs on ``-surface``, or with ``nearest`` on a
    flat surface, so each pixel goes to the marker it is closest to inside
    the blob (geodesic). The flat flood suits markers whose surface does not
    descend towards the true borders (a blob response between touching
    nuclei without a seam). Each blob
    keeps its component label for its highest region; extra regions get
    labels after the last component, so labels stay 1..count. Blobs that
    need a flood are collected and flooded together, up to
    ``_BATCH_PIXELS`` crop pixels per call.
    """
    count = ndi.label(mask, structure=FULL_2D, output=out)
    height, width = mask.shape
    next_label = count + 1
    pending: list[_Crop] = []
    queued = 0

    def flush() -> None:
        nonlocal next_label, queued
        for p, parts in zip(pending, _flood(pending), strict=True):
            lut = np.empty(p.count + 1, dtype=np.int32)
            lut[0], lut[1] = 0, p.label
            lut[2:] = np.arange(next_label, next_label + p.count - 1, dtype=np.int32)
            next_label += p.count - 1
            out[p.crop][p.blob] = lut[parts[p.blob]]
        pending.clear()
        queued = 0

    for label, box in enumerate(ndi.find_objects(out), start=1):
        if box is None:
            continue
        ys, xs = box
        if max(ys.stop - ys.start, xs.stop - xs.start) <= min_distance:
            continue  # too small to hold two separated peaks
        crop = (
            slice(max(ys.start - 1, 0), min(ys.stop + 1, height)),
            slice(max(xs.start - 1, 0), min(xs.stop + 1, width)),
        )
        blob = out[crop] == label
        level = surface(blob, crop)
        markers = find_markers(level, blob, min_distance)
        k = int(markers.max())
        if k < 2:
            continue
        if queued + blob.size > _BATCH_PIXELS and pending:
            flush()
        if nearest:
            level = np.zeros(blob.shape)
        pending.append(_Crop(label, crop, blob, level, markers, k))
        queued += blob.size
    if pending:
        flush()
    return next_label - 1


def split_plane(mask: np.ndarray, min_distance: int, out: np.ndarray) -> int:
    """Label ``mask`` into ``out`` (int32), splitting touching blobs; return count.

    Markers are distance-transform peaks at least ``min_distance`` apart;
    labels are 1..count. Peak memory is about 34 bytes per pixel of the
    largest blob's bounding box or of one flood batch (module docstring).
    """
    return split_blobs(mask, min_distance, out, _distance_surface)
