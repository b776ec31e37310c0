"""Shape features per object of a 2-D label image (CellProfiler AreaShape).

Every table of the ``_features_*`` modules is a ``dict`` of columns aligned to
:func:`present_labels`, so tables of one plane can be merged column by column.

Moments (area, centroid, axes, eccentricity, orientation) are ``bincount``
sums over the foreground pixels, and the perimeter is skimage's weighted
border-pixel code evaluated for all objects at once. Only the convex hull is
built per object, from the end pixels of each row, which is all a hull needs.
The definitions follow ``skimage.measure.regionprops`` (which CellProfiler
uses), and the tests compare every column with it:

- ``convex_area`` counts pixels whose centre lies in or on the hull of the
  object's pixel-edge midpoints (``area_convex``).
- ``feret_max`` is the largest distance between two pixel-edge midpoints on
  the boundary of that convex-hull image, which is what ``feret_diameter_max``
  measures on its marching-squares contour.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist

from openhcs_nb.errors import PipelineError

Table = dict[str, np.ndarray]

# Pixel-edge midpoints of a pixel centred on the origin, as (dy, dx).
_DIAMOND = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, -0.5], [0.0, 0.5]])
# Tolerance for "pixel centre on the hull boundary", in pixels.
_ON_EDGE = 1e-9
# Up to this many candidate points, the Feret diameter is a plain pdist.
_PDIST_LIMIT = 320


def check_labels(labels: object, function: str) -> np.ndarray:
    """Return ``labels`` as a 2-D non-negative integer array.

    Raises
    ------
    PipelineError
        The labels are not a 2-D integer image or hold negative values.
    """
    arr = np.asarray(labels)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise PipelineError(
            f"{function} needs a 2-D integer label image, got {arr.dtype} "
            f"of shape {arr.shape}",
            field="labels",
        )
    if arr.size and arr.min() < 0:
        raise PipelineError(f"{function} got negative labels", field="labels")
    return arr


def check_plane(image: object, shape: tuple[int, ...], function: str) -> np.ndarray:
    """Return ``image`` as a float64 plane of the labels' shape.

    Raises
    ------
    PipelineError
        The image is not 2-D or its shape differs from the labels.
    """
    arr = np.asarray(image)
    if arr.shape != shape:
        raise PipelineError(
            f"{function} got an image of shape {arr.shape} for labels of {shape}",
            field="image",
        )
    return arr.astype(np.float64, copy=False)


def _is_dense(labels: np.ndarray, top: int) -> bool:
    """Whether arrays indexed by label value stay about the image's size."""
    return top <= 4 * labels.size + 1024


def present_labels(labels: np.ndarray) -> np.ndarray:
    """Sorted unique non-zero labels: the row order of every feature table."""
    flat = np.asarray(labels).ravel()
    if flat.size == 0 or flat.max() <= 0:
        return np.zeros(0, dtype=np.int64)
    if not _is_dense(flat, int(flat.max())):
        found = np.unique(flat)
        return found[found > 0].astype(np.int64)
    found = np.flatnonzero(np.bincount(flat.astype(np.intp)))
    return found[found > 0].astype(np.int64)


def rows_of(present: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Table row of each (present, non-zero) label value in ``values``."""
    if present.size == 0 or not _is_dense(values, int(present[-1])):
        return np.searchsorted(present, values).astype(np.intp)
    lookup = np.zeros(int(present[-1]) + 1, dtype=np.intp)
    lookup[present] = np.arange(present.size)
    return lookup[values]


def object_slices(labels: np.ndarray, present: np.ndarray) -> list[tuple[slice, slice]]:
    """Bounding-box slices of the present labels, in table order.

    Sparse label values (say, 64-bit ids) are renumbered first so that
    ``find_objects`` does not allocate one entry per possible value.
    """
    if present.size and not _is_dense(labels, int(present[-1])):
        dense = np.zeros(labels.shape, dtype=np.int32)
        foreground = labels > 0
        dense[foreground] = rows_of(present, labels[foreground]) + 1
        return list(ndi.find_objects(dense))
    found = ndi.find_objects(labels)
    return [found[label - 1] for label in present]


def object_index(
    labels: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Present labels, flat foreground indices and each pixel's table row.

    The foreground indices are in raster order, which the row-extreme and
    sorting tricks of the feature modules rely on.
    """
    flat = labels.ravel()
    index = np.flatnonzero(flat)
    present = present_labels(labels)
    return present, index, rows_of(present, flat[index])


def perimeter(labels: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Skimage's 4-neighbourhood perimeter estimate, for every object at once.

    A border pixel has a 4-neighbour outside its object (another label,
    background or beyond the image). Each border pixel gets a code from the
    border pixels of the same object around it (2 per side neighbour, 10 per
    diagonal one, 1 for itself) and the code maps to a length, as in
    Benkrid & Crookes' estimator.
    """
    padded = np.pad(labels, 1)
    centre = padded[1:-1, 1:-1]
    inner = np.ones(labels.shape, dtype=bool)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        inner &= (
            padded[1 + dy : padded.shape[0] - 1 + dy, 1 + dx : padded.shape[1] - 1 + dx]
            == centre
        )
    border = (centre > 0) & ~inner
    border_padded = np.pad(border, 1)
    ys, xs = np.nonzero(border)
    own = labels[ys, xs]
    code = np.ones(ys.size, dtype=np.intp)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            same = (padded[ys + 1 + dy, xs + 1 + dx] == own) & border_padded[
                ys + 1 + dy, xs + 1 + dx
            ]
            code += same * (2 if dy == 0 or dx == 0 else 10)
    weights = np.zeros(50)
    weights[[5, 7, 15, 17, 25, 27]] = 1.0
    weights[[21, 33]] = np.sqrt(2.0)
    weights[[13, 23]] = (1.0 + np.sqrt(2.0)) / 2.0
    return np.bincount(
        rows_of(present, own),
        weights=weights[np.minimum(code, 49)],
        minlength=present.size,
    )


def _row_ends(which: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """First and last pixel of every (object, row) run, sorted by object.

    Returns an ``(k, 3)`` array of (row index, y, x). The input is in raster
    order, so a stable sort by object keeps each object's runs in order.
    """
    order = np.argsort(which, kind="stable")
    w, y, x = which[order], ys[order], xs[order]
    start = np.ones(w.size, dtype=bool)
    start[1:] = (w[1:] != w[:-1]) | (y[1:] != y[:-1])
    end = np.roll(start, -1)
    end[-1] = True
    keep = start | end
    return np.stack([w[keep], y[keep], x[keep]], axis=1)


def _hull_rows(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer rows and the first/last pixel centre in the hull on each row.

    ``points`` are pixel centres (y, x); the hull is taken over their
    pixel-edge midpoints. Pixel centres on the hull boundary count as inside.
    """
    corners = (points[:, None, :] + _DIAMOND).reshape(-1, 2)
    hull = ConvexHull(corners)
    ny, nx, c = hull.equations.T
    rows = np.arange(points[:, 0].min(), points[:, 0].max() + 1, dtype=np.float64)
    # Inside means ny*y + nx*x + c <= 0 for every facet.
    bound = -(c[None, :] + ny[None, :] * rows[:, None])
    upper_facet = nx > _ON_EDGE
    lower_facet = nx < -_ON_EDGE
    flat = ~(upper_facet | lower_facet)
    right = np.min(bound[:, upper_facet] / nx[upper_facet], axis=1, initial=np.inf)
    left = np.max(bound[:, lower_facet] / nx[lower_facet], axis=1, initial=-np.inf)
    first = np.ceil(left - _ON_EDGE)
    last = np.floor(right + _ON_EDGE)
    ok = last >= first
    if flat.any():
        ok &= np.all(bound[:, flat] >= -_ON_EDGE, axis=1)
    return rows[ok], first[ok], last[ok]


def _convex_and_feret(
    which: np.ndarray, ys: np.ndarray, xs: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Convex area and maximum Feret diameter of every object."""
    convex = np.zeros(count)
    feret = np.zeros(count)
    if count == 0:
        return convex, feret
    ends = _row_ends(which, ys, xs)
    splits = np.flatnonzero(np.diff(ends[:, 0])) + 1
    for chunk in np.split(ends, splits):
        row = int(chunk[0, 0])
        rows, first, last = _hull_rows(chunk[:, 1:].astype(np.float64))
        convex[row] = float(np.sum(last - first + 1))
        hull_ends = np.concatenate(
            [np.stack([rows, first], 1), np.stack([rows, last], 1)]
        )
        corners = (hull_ends[:, None, :] + _DIAMOND).reshape(-1, 2)
        # Only hull vertices can be diameter ends; for small objects pdist
        # over every candidate is cheaper than building that hull.
        if len(corners) > _PDIST_LIMIT:
            corners = corners[ConvexHull(corners).vertices]
        feret[row] = float(np.sqrt(pdist(corners, "sqeuclidean").max()))
    return convex, feret


def shape_features(labels: np.ndarray) -> Table:
    """AreaShape columns for every object, aligned to :func:`present_labels`.

    Raises
    ------
    PipelineError
        ``labels`` is not a 2-D non-negative integer image.
    """
    labels = check_labels(labels, "shape_features")
    present, index, which = object_index(labels)
    n = present.size
    ys, xs = np.divmod(index, labels.shape[1])
    area = np.bincount(which, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = np.bincount(which, weights=ys, minlength=n) / area
        cx = np.bincount(which, weights=xs, minlength=n) / area
        dy = ys - cy[which]
        dx = xs - cx[which]
        # Inertia tensor [[a, b], [b, c]] as skimage defines it (row, col).
        a = np.bincount(which, weights=dx * dx, minlength=n) / area
        c = np.bincount(which, weights=dy * dy, minlength=n) / area
        b = -np.bincount(which, weights=dy * dx, minlength=n) / area
        half_gap = np.sqrt(((a - c) / 2.0) ** 2 + b * b)
        l1 = np.maximum((a + c) / 2.0 + half_gap, 0.0)
        l2 = np.maximum((a + c) / 2.0 - half_gap, 0.0)
        eccentricity = np.where(l1 > 0, np.sqrt(1.0 - l2 / np.where(l1 > 0, l1, 1)), 0)
        # An isotropic object has no orientation; skimage reports -pi/4 then.
        orientation = np.where(
            a == c,
            np.where(b < 0, np.pi / 4.0, -np.pi / 4.0),
            0.5 * np.arctan2(-2.0 * b, c - a),
        )
    slices = object_slices(labels, present)
    bbox_area = np.array(
        [(s[0].stop - s[0].start) * (s[1].stop - s[1].start) for s in slices],
        dtype=np.float64,
    )
    perim = perimeter(labels, present)
    convex, feret = _convex_and_feret(which, ys, xs, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        form_factor = np.where(perim > 0, 4.0 * np.pi * area / perim**2, np.nan)
    return {
        "label": present,
        "area": area,
        "perimeter": perim,
        "convex_area": convex,
        "solidity": area / np.where(convex > 0, convex, np.nan),
        "extent": area / bbox_area,
        "eccentricity": eccentricity.astype(np.float64),
        "major_axis_length": 4.0 * np.sqrt(l1),
        "minor_axis_length": 4.0 * np.sqrt(l2),
        "orientation": orientation,
        "form_factor": form_factor,
        "feret_max": feret,
        "centroid_y": cy,
        "centroid_x": cx,
        "bbox_area": bbox_area,
    }
