"""Texture, granularity and radial intensity distribution per object.

- :func:`haralick_features` follows CellProfiler MeasureTexture: the field is
  quantised to ``levels`` grey levels once, each object is cropped to its
  bounding box and its co-occurrence features come from ``mahotas`` at pixel
  distance ``scale``, averaged over the four directions. Grey levels are
  shifted to ``1..levels`` so that ``ignore_zeros`` drops exactly the pixels
  outside the object.
- :func:`granularity` follows CellProfiler MeasureGranularity: the field is
  subsampled, then eroded step by step with a unit disk and reconstructed
  under the original (an opening by reconstruction with a growing disk). The
  share of each object's starting signal that disappears at step ``k`` is
  ``granularity_k``; CellProfiler reports the same number times 100.
- :func:`radial_distribution` follows CellProfiler's FracAtD and MeanFrac:
  each pixel's normalised radius is ``d_centre / (d_centre + d_edge)``, where
  the centre is the object's pixel farthest from its edge, ``d_centre`` the
  Euclidean distance to that centre and ``d_edge`` the distance to the
  nearest pixel outside the object (CellProfiler measures ``d_centre``
  inside the object; the two agree for convex objects).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from openhcs_nb.functions._features_shape import (
    Table,
    check_labels,
    check_plane,
    object_index,
    object_slices,
    present_labels,
)

HARALICK_NAMES: tuple[str, ...] = (
    "angular_second_moment",
    "contrast",
    "correlation",
    "variance",
    "inverse_difference_moment",
    "sum_average",
    "sum_variance",
    "sum_entropy",
    "entropy",
    "difference_variance",
    "difference_entropy",
    "info_meas1",
    "info_meas2",
)


def quantise(plane: np.ndarray, levels: int) -> np.ndarray:
    """Grey levels ``1..levels`` from the field's own range (0 is reserved)."""
    finite = plane[np.isfinite(plane)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    span = high - low if high > low else 1.0
    scaled = np.nan_to_num((plane - low) / span, nan=0.0)
    steps = np.rint(np.clip(scaled, 0.0, 1.0) * (levels - 1)).astype(np.int64)
    dtype = np.uint8 if levels < 255 else np.uint16
    return (steps + 1).astype(dtype)


def _unshift(features: np.ndarray, shift: int, size: int) -> np.ndarray:
    """Mahotas' features of the unshifted object from those of the shifted one.

    Objects are shifted so their darkest level is 1: the co-occurrence matrix
    then spans only the object's own range, which is far cheaper than the
    whole ``levels`` range. Every feature is shift-invariant except the sum
    average (it moves by ``2 * shift``) and mahotas' difference variance,
    which is the variance of a length-``size`` vector summing to one and so
    depends on the matrix size: it is rescaled to size ``size + shift``.
    """
    out = features.copy()
    out[5] += 2.0 * shift
    squares = size * features[9] + 1.0 / size  # sum of the vector's squares
    full = size + shift
    out[9] = squares / full - 1.0 / full**2
    return out


def haralick_features(
    labels: np.ndarray, image: np.ndarray, *, scale: int = 3, levels: int = 256
) -> Table:
    """Thirteen Haralick features per object, ``texture_<name>_<scale>``.

    An object with no pixel pair at distance ``scale`` in one of the four
    directions gets NaN in every texture column.

    Raises
    ------
    PipelineError
        Bad labels or image shape.
    ValueError
        ``scale`` below 1 or ``levels`` outside 2..65535.
    """
    import mahotas

    if scale < 1 or not 2 <= levels <= 65535:
        raise ValueError(
            f"need scale >= 1 and 2 <= levels <= 65535, got {scale}, {levels}"
        )
    labels = check_labels(labels, "haralick_features")
    plane = check_plane(image, labels.shape, "haralick_features")
    present = present_labels(labels)
    grey = quantise(plane, levels)
    values = np.full((present.size, len(HARALICK_NAMES)), np.nan)
    slices = object_slices(labels, present)
    for row, label in enumerate(present):
        window = slices[row]
        inside = labels[window] == label
        shift = int(grey[window][inside].min()) - 1
        crop = np.where(inside, grey[window] - shift, 0)
        try:
            features = mahotas.features.haralick(
                crop, ignore_zeros=True, distance=scale, return_mean=True
            )
        except ValueError:
            continue  # too small for this scale in some direction
        values[row] = _unshift(features, shift, int(crop.max()) + 1)
    table: Table = {"label": present}
    for column, name in enumerate(HARALICK_NAMES):
        table[f"texture_{name}_{scale}"] = values[:, column]
    return table


def _sample_points(
    shape: tuple[int, int], small: tuple[int, int], index: np.ndarray
) -> np.ndarray:
    """Coordinates in the subsampled grid of the given full-size pixels."""
    ys, xs = np.divmod(index, shape[1])
    fy = (small[0] - 1) / (shape[0] - 1) if shape[0] > 1 else 0.0
    fx = (small[1] - 1) / (shape[1] - 1) if shape[1] > 1 else 0.0
    return np.stack([ys * fy, xs * fx])


def granularity(
    labels: np.ndarray,
    image: np.ndarray,
    *,
    spectrum: int = 8,
    subsample: float = 0.25,
    background_radius: int | None = None,
) -> Table:
    """Granularity spectrum per object: ``granularity_1..spectrum`` (fractions).

    ``subsample`` shrinks the field first (as CellProfiler does) so a step is
    ``1/subsample`` full-size pixels; the reconstructed image is sampled back
    at each object's pixels by bilinear interpolation, so no object vanishes.
    ``background_radius`` (in subsampled pixels) subtracts a greyscale
    opening first, CellProfiler's optional background removal.

    Raises
    ------
    PipelineError
        Bad labels or image shape.
    ValueError
        ``spectrum`` below 1 or ``subsample`` outside (0, 1].
    """
    from skimage.morphology import disk, reconstruction

    if spectrum < 1 or not 0 < subsample <= 1:
        raise ValueError(
            f"need spectrum >= 1 and 0 < subsample <= 1, got {spectrum}, {subsample}"
        )
    labels = check_labels(labels, "granularity")
    plane = check_plane(image, labels.shape, "granularity")
    present, index, which = object_index(labels)
    n = present.size
    small = ndi.zoom(plane, subsample, order=1) if subsample < 1 else plane.copy()
    if background_radius:
        small = small - ndi.grey_opening(small, footprint=disk(background_radius))
    small = np.maximum(small, 0.0)
    points = _sample_points(labels.shape, small.shape, index)
    area = np.bincount(which, minlength=n).astype(np.float64)

    def object_means(field: np.ndarray) -> np.ndarray:
        sampled = ndi.map_coordinates(field, points, order=1, mode="nearest")
        return np.bincount(which, weights=sampled, minlength=n) / area

    unit = disk(1)
    start = object_means(small)
    previous = start
    eroded = small
    table: Table = {"label": present}
    with np.errstate(invalid="ignore", divide="ignore"):
        for step in range(1, spectrum + 1):
            eroded = ndi.grey_erosion(eroded, footprint=unit)
            rebuilt = reconstruction(eroded, small, method="dilation", footprint=unit)
            current = object_means(rebuilt)
            table[f"granularity_{step}"] = np.where(
                start > 0, (previous - current) / start, np.nan
            )
            previous = current
    return table


def _radii(mask: np.ndarray) -> np.ndarray:
    """Normalised radius (0 at the centre, towards 1 at the edge) per pixel."""
    to_edge = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    centre = np.unravel_index(np.argmax(to_edge), mask.shape)
    yy, xx = np.nonzero(mask)
    to_centre = np.hypot(yy - centre[0], xx - centre[1])
    return to_centre / (to_centre + to_edge[yy, xx])


def radial_distribution(
    labels: np.ndarray, image: np.ndarray, *, bins: int = 4
) -> Table:
    """Share of each object's intensity per ring: ``radial_frac_<k>_of_<bins>``.

    Ring 1 is the centre and ring ``bins`` the edge. ``radial_mean_frac`` is
    the ring's share of intensity over its share of pixels (1 means even
    distribution), NaN for a ring with no pixels.

    Raises
    ------
    PipelineError
        Bad labels or image shape.
    ValueError
        ``bins`` below 1.
    """
    if bins < 1:
        raise ValueError(f"need bins >= 1, got {bins}")
    labels = check_labels(labels, "radial_distribution")
    plane = check_plane(image, labels.shape, "radial_distribution")
    present = present_labels(labels)
    frac = np.full((present.size, bins), np.nan)
    mean_frac = np.full((present.size, bins), np.nan)
    slices = object_slices(labels, present)
    for row, label in enumerate(present):
        window = slices[row]
        mask = labels[window] == label
        ring = np.minimum((_radii(mask) * bins).astype(np.intp), bins - 1)
        values = plane[window][mask]
        total = values.sum()
        pixels = np.bincount(ring, minlength=bins) / ring.size
        if total > 0:
            frac[row] = np.bincount(ring, weights=values, minlength=bins) / total
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_frac[row] = np.where(pixels > 0, frac[row] / pixels, np.nan)
    table: Table = {"label": present}
    for k in range(bins):
        table[f"radial_frac_{k + 1}_of_{bins}"] = frac[:, k]
    for k in range(bins):
        table[f"radial_mean_frac_{k + 1}_of_{bins}"] = mean_frac[:, k]
    return table
