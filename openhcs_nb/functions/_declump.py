"""Primary objects with declumping, after CellProfiler's IdentifyPrimaryObjects.

A clump is an 8-connected blob of the foreground mask that holds several
nuclei. Declumping picks one marker per nucleus and floods the blob from them
(``skimage.segmentation.watershed``, via :func:`split_blobs`):

- ``"shape"``: markers are maxima of the blob's distance transform (optionally
  smoothed), the flood runs on ``-distance``. Right for round nuclei that
  touch along a waist.
- ``"intensity"``: markers are maxima of the smoothed image inside the blob,
  the flood runs on ``-intensity``. Right for nuclei that are brightest in
  the middle and dimmer where they meet, even without a waist.
- ``"blob"``: markers are maxima of the distance transform plus a
  Laplacian-of-Gaussian blob response of the image at scale
  ``min_distance`` (:mod:`._markers`); each blob pixel then goes to its
  nearest marker. Right for confluent nuclei that touch without a seam or
  a waist, bright at the rim.
- ``"none"``: connected components only.

Maxima closer than ``min_distance`` to a higher one are dropped, which is
CellProfiler's "suppress local maxima closer than" setting.

Memory: the smoothed image for ``"intensity"`` (float32, 4 bytes per plane
pixel) or the blob surface for ``"blob"`` (12 bytes per pixel while it is
built, 4 kept) plus :func:`split_blobs`' ~34 bytes per pixel of the largest blob's
bounding box; never pixels x markers.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from openhcs_nb.functions._common import FULL_2D
from openhcs_nb.functions._markers import blob_surface
from openhcs_nb.functions._watershed import Surface, split_blobs

Declump = Literal["blob", "shape", "intensity", "none"]


def _shape_surface(smoothing: float) -> Surface:
    """EDT of the blob, blurred by ``smoothing`` to flatten pixel-grid ripples."""

    def surface(blob: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
        del box
        dist = ndi.distance_transform_edt(blob)
        if smoothing > 0:
            ndi.gaussian_filter(dist, smoothing, output=dist, mode="constant")
        return dist

    return surface


def _plane_surface(smoothed: np.ndarray) -> Surface:
    """A whole-plane surface read on the blob's crop; the blob limits the flood."""

    def surface(blob: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
        del blob
        return smoothed[box].astype(np.float64)

    return surface


def declump_plane(
    mask: np.ndarray,
    image: np.ndarray,
    *,
    method: Declump,
    min_distance: int,
    smoothing: float,
    out: np.ndarray,
) -> int:
    """Label ``mask`` into ``out`` (int32), splitting clumps; return the count.

    ``image`` is the nuclear channel the mask came from (used by
    ``"intensity"`` and ``"blob"``); ``smoothing`` is the Gaussian sigma in
    pixels applied to the image (``"intensity"``) or the distance map
    (``"shape"``), 0 for none; ``"blob"`` ignores it and takes its scale
    from ``min_distance`` (the blob sigma, about a nucleus radius over
    sqrt 2, which is also about the closest two centres get). Labels are
    1..count, 8-connected.

    Raises
    ------
    ValueError
        Unknown ``method``, or ``image`` and ``mask`` differ in shape.
    """
    mask = np.asarray(mask, dtype=bool)
    if method == "none":
        return int(ndi.label(mask, structure=FULL_2D, output=out))
    if method == "shape":
        return split_blobs(mask, min_distance, out, _shape_surface(smoothing))
    if method not in ("intensity", "blob"):
        raise ValueError(
            f"unknown declump method {method!r}: blob, shape, intensity or none"
        )
    if np.shape(image) != mask.shape:
        raise ValueError(
            f"image shape {np.shape(image)} differs from mask shape {mask.shape}"
        )
    if method == "blob":
        surface = blob_surface(mask, image, float(min_distance))
        return split_blobs(
            mask, min_distance, out, _plane_surface(surface), nearest=True
        )
    smoothed = np.asarray(image, dtype=np.float32)
    if smoothing > 0:
        smoothed = ndi.gaussian_filter(smoothed, smoothing, mode="nearest")
    return split_blobs(mask, min_distance, out, _plane_surface(smoothed))
