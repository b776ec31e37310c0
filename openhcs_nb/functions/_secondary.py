"""Secondary objects: cells grown from nucleus seeds, after IdentifySecondaryObjects.

Every method grows the seed labels over a foreground mask (``image >
threshold``, Otsu when no threshold is given, united with the seeds) and
keeps each cell's id equal to its seed's id, so cell i has nucleus i:

- ``"watershed"``: one multi-source ``skimage.segmentation.watershed`` on the
  Sobel gradient of the lightly smoothed image; cells meet where the
  cytoplasm's brightness changes (an edge, or a dark membrane).
- ``"propagation"``: the same flood on ``gradient + regularization *
  distance_from_seeds``. This approximates CellProfiler's propagation, which
  runs Dijkstra on a step cost mixing the image difference and spatial
  distance weighted by lambda: a watershed floods by surface height rather
  than accumulated path cost, but the blend has the same limits (lambda 0:
  follow edges only; large lambda: split by distance, a Voronoi partition).
  A real multi-source geodesic run (``skimage.graph.MCP_Geometric``) was
  measured at 6 s on 1024 x 1024 against ~0.3 s for this.
- ``"distance"``: ``skimage.segmentation.expand_labels`` by ``distance``.

The gradient is scaled so that an edge between two cells makes a ridge about
as high as its step in brightness, as a fraction of the image's 1st-99th
percentile range; ``regularization`` then reads as "fraction of the range
per pixel of distance" whatever the dtype. A cell-cell edge holds the flood
back against about ``step / regularization`` pixels of extra distance.

``distance`` limits every method: no cell pixel lies farther than
``distance`` (Euclidean, px) from its own seed; 0 means unlimited. Pixels
cut off from their seed by that limit are dropped too, so every cell is its
seed plus pixels connected to it.

Memory: float32 smoothed image, gradient and seed distance (12 bytes per
pixel), the distance transform's feature indices (8) and the watershed's
buffers (~20): linear, never pixels x seeds. Measured with tracemalloc on
960 x 960 with 630 cells: 42 bytes per pixel (propagation), 38 (distance).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import sobel, threshold_otsu
from skimage.segmentation import expand_labels, watershed

from openhcs_nb.functions._common import FULL_2D

Growth = Literal["propagation", "watershed", "distance"]


def _foreground(
    image: np.ndarray, seeds: np.ndarray, threshold: float | None
) -> np.ndarray:
    """``image > threshold`` (Otsu when None) or a seed pixel."""
    level = threshold_otsu(image) if threshold is None else threshold
    return (image > level) | (seeds > 0)


def _gradient(image: np.ndarray) -> np.ndarray:
    """Sobel magnitude of the smoothed image, per unit of its intensity range.

    skimage's Sobel gives about half the step height on a sigma-1 edge, so
    doubling it makes a step of ``dI`` (as a fraction of the range) a ridge
    of height ~``dI``, comparable to CellProfiler's per-step image cost.
    """
    smoothed = ndi.gaussian_filter(image, 1.0)
    low, high = np.percentile(smoothed, [1.0, 99.0])
    edges = sobel(smoothed).astype(np.float32, copy=False)
    edges *= np.float32(2.0 / max(float(high - low), 1e-12))
    return edges


def _trim_to_seeds(out: np.ndarray, seeds: np.ndarray, distance: int) -> None:
    """Drop pixels farther than ``distance`` from their own seed, or cut off.

    Works per cell on its bounding box (which holds its whole seed, so the
    crop's distance transform is exact). ``distance`` 0 only removes pixels
    not 8-connected to their seed. Watershed floods need only the distance
    test; masking an expansion by the foreground can also strand pieces.
    """
    for label, box in enumerate(ndi.find_objects(out), start=1):
        if box is None:
            continue
        cell = out[box] == label
        seed = seeds[box] == label
        if not seed.any():
            out[box][cell] = 0
            continue
        keep = cell.copy()
        if distance > 0:
            keep &= ndi.distance_transform_edt(~seed) <= distance
        pieces, count = ndi.label(keep, structure=FULL_2D)
        if count > 1:
            attached = np.zeros(count + 1, dtype=bool)
            attached[pieces[seed]] = True
            attached[0] = False
            keep = attached[pieces]
        out[box][cell & ~keep] = 0


def grow_cells(
    image: np.ndarray,
    seeds: np.ndarray,
    *,
    method: Growth,
    threshold: float | None,
    distance: int,
    regularization: float,
    out: np.ndarray,
) -> int:
    """Grow ``seeds`` (nucleus labels) into cells, written into ``out`` (int32).

    Returns the number of cells, one per seed label present; every seed pixel
    stays in its cell. ``regularization`` (lambda) is used by
    ``"propagation"`` only.

    Raises
    ------
    ValueError
        Unknown ``method``, negative ``distance`` or ``regularization``, or
        ``image`` and ``seeds`` differ in shape.
    """
    image = np.asarray(image, dtype=np.float32)
    seeds = np.asarray(seeds).astype(np.int32, copy=False)
    if image.shape != seeds.shape:
        raise ValueError(f"image {image.shape} and seeds {seeds.shape} differ in shape")
    if distance < 0 or regularization < 0:
        raise ValueError("distance and regularization must be >= 0")
    if method not in ("propagation", "watershed", "distance"):
        raise ValueError(
            f"unknown growth method {method!r}: propagation, watershed or distance"
        )
    foreground = _foreground(image, seeds, threshold)
    if method == "distance":
        reach = np.inf if distance == 0 else float(distance)
        grown = expand_labels(seeds, distance=reach)
        grown[~foreground] = 0
        out[...] = grown
        del grown
    else:
        surface = _gradient(image)
        if method == "propagation" or distance > 0:
            from_seeds = ndi.distance_transform_edt(seeds == 0).astype(np.float32)
            if distance > 0:
                foreground &= from_seeds <= distance
            if method == "propagation" and regularization > 0:
                surface += np.float32(regularization) * from_seeds
            del from_seeds
        out[...] = watershed(surface, seeds, mask=foreground, connectivity=2)
        del surface
    if distance > 0 or method == "distance":
        _trim_to_seeds(out, seeds, distance)
    np.copyto(out, seeds, where=seeds > 0)
    present = np.bincount(seeds.ravel().clip(0).astype(np.intp))
    return int(np.count_nonzero(present[1:]))
