"""The scikit-image side of ``bench_cells.py``: the same steps, written plainly.

Each function is what a scikit-image user would write for the step, with the
default pipeline's parameters from ``_cells_field.py``; ``skimage_chain``
times them the way ``bench_cells.ours`` times the catalogue functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from _cells_field import (
    CELL_DISTANCE,
    DECLUMP_SIGMA,
    LEVELS,
    MAX_SIZE,
    MIN_DISTANCE,
    MIN_SIZE,
    REGULARIZATION,
    SHAPE_PROPS,
    SMOOTHING,
    TEXTURE_SCALE,
    Clock,
    Field,
    Outcome,
    Times,
    timed_on,
)
from scipy import ndimage as ndi


def sk_primary(plane: np.ndarray) -> np.ndarray:
    """Nuclei the textbook scikit-image way, with ours' parameters."""
    from skimage import feature, filters, measure, morphology, segmentation

    smooth = filters.gaussian(plane, sigma=SMOOTHING, preserve_range=True)
    mask = smooth > filters.threshold_otsu(smooth)
    dist = ndi.gaussian_filter(
        ndi.distance_transform_edt(mask), DECLUMP_SIGMA, mode="constant"
    )
    blobs = measure.label(mask, connectivity=2)
    peaks = feature.peak_local_max(
        dist, min_distance=MIN_DISTANCE, labels=blobs, exclude_border=False
    )
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    split = segmentation.watershed(-dist, markers, mask=mask, connectivity=2)
    for region in measure.regionprops(split):  # holes filled per object, after
        piece = split[region.slice]
        piece[ndi.binary_fill_holes(region.image) & (piece == 0)] = region.label
    split = morphology.remove_small_objects(split, max_size=MIN_SIZE - 1)
    area = np.bincount(split.ravel())
    split[area[split] > MAX_SIZE] = 0
    return segmentation.relabel_sequential(split)[0].astype(np.int32)


def sk_foreground(plane: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, Any]:
    """Smoothed cytoplasm and its mask: triangle threshold of log intensity."""
    from skimage import filters

    smooth = filters.gaussian(plane, sigma=SMOOTHING, preserve_range=True)
    logged = np.log(np.maximum(smooth, 1.0))
    level = math.exp(filters.threshold_triangle(logged))
    return smooth, (smooth > level) | (seeds > 0)


def sk_trim(cells: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Drop cell pixels beyond ``CELL_DISTANCE`` of their own nucleus, or cut off."""
    from skimage import measure

    for region in measure.regionprops(cells):
        box = region.slice
        cell = cells[box] == region.label
        seed = seeds[box] == region.label
        keep = cell & (ndi.distance_transform_edt(~seed) <= CELL_DISTANCE)
        pieces = measure.label(keep, connectivity=2)
        keep = np.isin(pieces, np.unique(pieces[seed & (pieces > 0)]))
        cells[box][cell & ~keep] = 0
    np.copyto(cells, seeds, where=seeds > 0)
    return cells


def sk_propagation(plane: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The same blended-cost watershed as ours, written with scikit-image."""
    from skimage import filters, segmentation

    smooth, foreground = sk_foreground(plane, seeds)
    edges = ndi.gaussian_filter(smooth, 1.0)
    low, high = np.percentile(edges, [1.0, 99.0])
    cost = filters.sobel(edges) * (2.0 / max(high - low, 1e-12))
    from_seeds = ndi.distance_transform_edt(seeds == 0)
    cost += REGULARIZATION * from_seeds
    foreground &= from_seeds <= CELL_DISTANCE
    cells = segmentation.watershed(cost, seeds, mask=foreground, connectivity=2)
    return sk_trim(cells.astype(np.int32), seeds)


def sk_distance(plane: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Cells as nuclei expanded by ``CELL_DISTANCE`` within the foreground."""
    from skimage import segmentation

    _, foreground = sk_foreground(plane, seeds)
    grown = segmentation.expand_labels(seeds, distance=CELL_DISTANCE)
    grown[~foreground] = 0
    return sk_trim(grown, seeds)


def sk_measure(stack: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """regionprops_table over both channels (channel last)."""
    from skimage import measure

    return measure.regionprops_table(
        labels, intensity_image=np.moveaxis(stack, 0, -1), properties=SHAPE_PROPS
    )


def naive_haralick(labels: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """Mahotas Haralick per object crop over every grey level, mean of 4 angles."""
    import mahotas
    from skimage import measure

    span = max(float(plane.max()) - float(plane.min()), 1.0)
    grey = 1 + np.rint((plane - float(plane.min())) / span * (LEVELS - 1))
    grey = grey.astype(np.uint16)
    rows = []
    for region in measure.regionprops(labels):
        crop = np.where(region.image, grey[region.slice], 0)
        try:
            rows.append(
                mahotas.features.haralick(
                    crop, ignore_zeros=True, distance=TEXTURE_SCALE, return_mean=True
                )
            )
        except ValueError:
            rows.append(np.full(13, np.nan))
    return np.asarray(rows)


def direct_quality(plane: np.ndarray, tile: int = 64) -> dict[str, float]:
    """Focus, local focus, power-spectrum slope, saturation and percentiles."""
    from skimage.util import view_as_blocks

    image = plane.astype(np.float64)
    rows, cols = image.shape[0] // tile * tile, image.shape[1] // tile * tile
    blocks = view_as_blocks(image[:rows, :cols], (tile, tile))
    local = blocks.var(axis=(2, 3)) / blocks.mean(axis=(2, 3))
    power = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    side = min(image.shape)
    cy, cx = image.shape[0] // 2, image.shape[1] // 2
    yy, xx = np.indices(image.shape)
    radius = np.rint(
        np.hypot((yy - cy) / image.shape[0], (xx - cx) / image.shape[1]) * side
    ).astype(int)
    freqs = np.arange(1, side // 2 + 1)
    spectrum = ndi.mean(power, labels=radius, index=freqs)
    slope = np.polyfit(np.log(freqs), np.log(spectrum), 1)[0]
    out = {
        "focus_score": image.var() / image.mean(),
        "local_focus_mean": float(np.mean(local)),
        "local_focus_min": float(np.min(local)),
        "power_log_log_slope": float(slope),
        "saturated_fraction": float(np.mean(plane == np.iinfo(plane.dtype).max)),
    }
    for q in (1, 5, 25, 50, 75, 95, 99):
        out[f"intensity_p{q}"] = float(np.percentile(image, q))
    return out


def skimage_chain(field: Field, times: Times, clock: Clock) -> Outcome:
    """The same steps with scikit-image, numpy and mahotas called plainly."""

    def timed(name: str, step: Callable[[], Any]) -> Any:
        return timed_on(times, name, step, clock)

    nuclei = timed("primary", lambda: sk_primary(field.nuclear))
    cyto = field.stack[1]
    cells = timed("secondary", lambda: sk_propagation(cyto, nuclei))
    timed("secondary distance (extra)", lambda: sk_distance(cyto, nuclei))
    cytoplasm = timed(
        "tertiary", lambda: np.where(nuclei > 0, 0, cells).astype(np.int32)
    )
    tables = [
        timed("measure", lambda plane=plane: sk_measure(field.stack, plane))
        for plane in (nuclei, cells, cytoplasm)
    ]
    texture = timed("haralick", lambda: naive_haralick(nuclei, field.stack[0]))
    quality = timed("quality", lambda: [direct_quality(p) for p in field.stack])
    slopes = np.array([q["power_log_log_slope"] for q in quality])
    return Outcome(nuclei, cells, cytoplasm, tables[1], texture, slopes)
