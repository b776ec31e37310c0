"""Splitting touching nuclei: distance transform, peak markers, watershed.

The classic recipe (Euclidean distance transform of the mask, one marker per
local maximum at least ``min_distance`` apart, watershed of the negated
distance from those markers) is run on each connected blob separately, on a
crop of its bounding box. That matters for speed: SciPy's full-image EDT costs
~300 ms on 2048 x 2048, the per-blob EDTs together ~80 ms, and blobs with a
single marker (most of them) need no watershed at all.

For blobs with several markers the watershed is computed in closed form. The
distance map of a union of discs is ``max_i(r_i - |p - c_i|)``; its watershed
from the disc centres assigns each pixel to the centre minimising
``|p - c_i| - r_i`` (an additively weighted Voronoi partition), with ``r_i``
the distance value at the marker. That is exact for round nuclei, close for
slightly elongated ones, and vectorises to one ``(pixels x markers)`` array.
Where a region comes out in several pieces (possible for concave blobs) only
its largest piece is kept and the rest join their nearest neighbouring region.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from openhcs_nb.functions._common import FULL_2D


def find_markers(dist: np.ndarray, min_distance: int) -> np.ndarray:
    """Peaks of ``dist`` as a ``(k, 3)`` array of ``(y, x, height)``, highest first.

    A peak is a plateau of pixels equal to the maximum of their
    ``(2 * min_distance + 1)``-square window; peaks closer than
    ``min_distance`` (Chebyshev) to a higher one are dropped.
    """
    size = 2 * min_distance + 1
    # Two 1-D passes make the square window; cheaper than maximum_filter's setup.
    local_max = ndi.maximum_filter1d(dist, size, axis=0, mode="constant", cval=0.0)
    ndi.maximum_filter1d(local_max, size, axis=1, output=local_max, mode="constant")
    peaks = (dist == local_max) & (dist > 0)
    ys, xs = np.nonzero(peaks)
    if len(ys) == 0:
        return np.zeros((0, 3))
    if np.ptp(ys) <= min_distance and np.ptp(xs) <= min_distance:
        # Every peak is within min_distance of the highest: one marker.
        top = int(np.argmax(dist[ys, xs]))
        return np.array([[ys[top], xs[top], dist[ys[top], xs[top]]]], dtype=np.float64)
    plateaus, count = ndi.label(peaks, structure=FULL_2D)
    which = plateaus[ys, xs]
    n = np.bincount(which, minlength=count + 1)[1:].astype(np.float64)
    cy = np.bincount(which, weights=ys, minlength=count + 1)[1:] / n
    cx = np.bincount(which, weights=xs, minlength=count + 1)[1:] / n
    height = np.bincount(which, weights=dist[ys, xs], minlength=count + 1)[1:] / n
    order = np.argsort(-height, kind="stable")
    kept: list[int] = []
    for i in order:
        close = [
            max(abs(cy[i] - cy[j]), abs(cx[i] - cx[j])) <= min_distance for j in kept
        ]
        if not any(close):
            kept.append(int(i))
    return np.stack([cy[kept], cx[kept], height[kept]], axis=1)


def partition(blob: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """Regions ``1..k`` of ``blob`` for ``markers`` (the closed-form watershed)."""
    ys, xs = np.nonzero(blob)
    dy = ys[:, None] - markers[None, :, 0]
    dx = xs[:, None] - markers[None, :, 1]
    cost = np.sqrt(dy * dy + dx * dx) - markers[None, :, 2]
    parts = np.zeros(blob.shape, dtype=np.int32)
    parts[ys, xs] = np.argmin(cost, axis=1).astype(np.int32) + 1
    _keep_largest_pieces(parts, blob, len(markers))
    return parts


def _keep_largest_pieces(parts: np.ndarray, blob: np.ndarray, k: int) -> None:
    """Make every region connected; stray pieces go to the nearest region."""
    stray = np.zeros(blob.shape, dtype=bool)
    for region in range(1, k + 1):
        pieces, count = ndi.label(parts == region, structure=FULL_2D)
        if count > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            stray |= (pieces > 0) & (pieces != int(np.argmax(sizes)))
    if stray.any():
        parts[stray] = 0
        nearest = ndi.distance_transform_edt(
            parts == 0, return_distances=False, return_indices=True
        )
        parts[stray] = parts[nearest[0][stray], nearest[1][stray]]


def split_plane(mask: np.ndarray, min_distance: int, out: np.ndarray) -> int:
    """Label ``mask`` into ``out`` (int32), splitting touching blobs; return count.

    Each blob keeps its component label for its first region; extra regions
    get labels after the last component, so labels stay 1..count.
    """
    count = ndi.label(mask, structure=FULL_2D, output=out)
    height, width = mask.shape
    next_label = count + 1
    for label, box in enumerate(ndi.find_objects(out), start=1):
        if box is None:
            continue
        ys, xs = box
        if max(ys.stop - ys.start, xs.stop - xs.start) <= min_distance:
            continue  # too small to hold two separated peaks
        # One pixel of margin so the EDT sees background all round.
        crop = (
            slice(max(ys.start - 1, 0), min(ys.stop + 1, height)),
            slice(max(xs.start - 1, 0), min(xs.stop + 1, width)),
        )
        view = out[crop]
        blob = view == label
        markers = find_markers(ndi.distance_transform_edt(blob), min_distance)
        if len(markers) < 2:
            continue
        parts = partition(blob, markers)
        lut = np.empty(len(markers) + 1, dtype=np.int32)
        lut[0], lut[1] = 0, label
        lut[2:] = np.arange(next_label, next_label + len(markers) - 1, dtype=np.int32)
        next_label += len(markers) - 1
        view[blob] = lut[parts[blob]]
    return next_label - 1
