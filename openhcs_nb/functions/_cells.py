"""Object identification for a real screen: nuclei, cells, cytoplasm, filters.

The CellProfiler trio, one catalogue function each:

- ``identify_primary``: smooth, threshold, split clumps by shape, shape
  plus a blob response, or intensity (seeded watershed, linear memory), fill
  each object's holes, drop objects by size and, optionally, those touching
  the border.
- ``identify_secondary``: grow cells from an earlier labels set (the
  ``seeds``, usually nuclei) over a cytoplasm or membrane channel, with a
  distance limit. Cell ids equal their nucleus's id.
- ``identify_tertiary``: the cell minus its nucleus (cytoplasm), same id.

``filter_objects`` drops objects by a shape measurement or by touching the
border. The algorithms live in ``_declump``, ``_markers``, ``_secondary``
and ``_relate``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from msgspec import Meta

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._banded import gaussian_stack
from openhcs_nb.functions._common import as_labels_plane, as_stack, labels_argument
from openhcs_nb.functions._declump import Declump, declump_plane
from openhcs_nb.functions._features_shape import shape_features
from openhcs_nb.functions._relate import filter_objects as keep_within
from openhcs_nb.functions._relate import subtract_objects, touching_border
from openhcs_nb.functions._secondary import grow_cells
from openhcs_nb.functions._segmentation import fill_object_holes
from openhcs_nb.functions._threshold import li_value, otsu_value
from openhcs_nb.spec import Function, LabelsName

Threshold = Literal["otsu", "li", "triangle", "log_otsu", "log_triangle"]
# Parameters identify_primary and identify_secondary share, declared once.
Smoothing = Annotated[
    float, Meta(ge=0, le=10, description="Gaussian sigma before thresholding")
]
ThresholdMethod = Annotated[
    Threshold, Meta(description="how the foreground threshold is found")
]
ThresholdCorrection = Annotated[
    float, Meta(ge=0.2, le=5, description="multiply the threshold by this")
]
_SHAPE_FEATURES = Literal[
    "area", "solidity", "eccentricity", "form_factor", "extent", "feret_max"
]


def threshold_value(plane: np.ndarray, method: str) -> float:
    """The global threshold of ``plane`` by ``method``.

    The ``log_`` methods threshold the logarithm of the intensities: a cell
    stain's bright and dim cells then sit close together, far from the
    background, so one cut works from sparse to confluent fields (on the
    demo plate, cell F1 0.93-1.0 in every column against 0.37-1.0 linear).
    """
    if method.startswith("log_"):
        logged = np.log(np.maximum(plane, 1.0, dtype=np.float32))
        return float(np.exp(threshold_value(logged, method[4:])))
    if method == "otsu":
        return otsu_value(plane)
    if method == "li":
        return li_value(plane)
    from skimage.filters import threshold_triangle

    return float(threshold_triangle(plane))


def _size_and_border(
    labels: np.ndarray, min_size: int, max_size: int, exclude_border: bool
) -> np.ndarray:
    """Labels outside [min_size, max_size] (or on the border) removed, 1..n."""
    area = np.bincount(labels.ravel())
    present = np.flatnonzero(area)
    present = present[present > 0]
    values = area[present].astype(np.float64)
    if exclude_border:
        values[touching_border(labels)] = np.nan
    return keep_within(labels, values, low=min_size, high=max_size)


def _required_planes(value: object, param: str, function: str) -> np.ndarray:
    """A labels-name parameter's planes as ``(n, y, x)``; it must name a set.

    Raises
    ------
    PipelineError
        The parameter names no labels (or a direct call passed a name).
    """
    planes = labels_argument(value, param, function)
    if planes is None:
        raise PipelineError(f"{function} needs labels for {param}", field=param)
    return planes[None] if planes.ndim == 2 else planes


def _identify_primary(
    stack: np.ndarray,
    *,
    smoothing: Smoothing = 1.0,
    threshold: ThresholdMethod = "otsu",
    threshold_correction: ThresholdCorrection = 1.0,
    declump: Annotated[
        Declump,
        Meta(
            description="split clumps by shape + blob response, shape "
            "(distance) or intensity peaks"
        ),
    ] = "shape",
    min_distance: Annotated[
        int, Meta(ge=1, le=100, description="smallest distance between centres (px)")
    ] = 6,
    declump_smoothing: Annotated[
        float,
        Meta(ge=0, le=20, description="extra Gaussian sigma for finding centres"),
    ] = 2.0,
    min_size: Annotated[
        int, Meta(ge=0, le=5000, description="smallest object kept (pixels)")
    ] = 30,
    max_size: Annotated[
        int, Meta(ge=1, le=1_000_000, description="largest object kept (pixels)")
    ] = 20_000,
    fill_holes: Annotated[
        bool, Meta(description="fill holes inside each object, after splitting")
    ] = True,
    exclude_border: Annotated[
        bool, Meta(description="drop objects touching the field's edge")
    ] = False,
) -> np.ndarray:
    """Nuclei (or any bright, round-ish objects) of each plane, as labels."""
    stack = as_stack(stack, "identify_primary")
    smooth = gaussian_stack(stack, smoothing)
    out = np.zeros(stack.shape, dtype=np.int32)
    mask = np.empty(stack.shape[1:], dtype=bool)
    for i, plane in enumerate(smooth):
        np.greater(
            plane, threshold_value(plane, threshold) * threshold_correction, out=mask
        )
        declump_plane(
            mask,
            plane,
            method=declump,
            min_distance=min_distance,
            smoothing=declump_smoothing,
            out=out[i],
        )
        if fill_holes:
            out[i] = fill_object_holes(out[i])
        out[i] = _size_and_border(out[i], min_size, max_size, exclude_border)
    return out


def _identify_secondary(
    stack: np.ndarray,
    *,
    seeds: Annotated[
        LabelsName, Meta(description="labels to grow from (usually the nuclei)")
    ] = "",
    method: Annotated[
        Literal["propagation", "watershed", "distance"],
        Meta(description="how cells grow from the seeds over the image"),
    ] = "propagation",
    smoothing: Smoothing = 1.0,
    threshold: ThresholdMethod = "log_triangle",
    threshold_correction: ThresholdCorrection = 1.0,
    distance: Annotated[
        int, Meta(ge=0, le=500, description="farthest a cell reaches (px); 0: any")
    ] = 60,
    regularization: Annotated[
        float,
        Meta(ge=0, le=10, description="propagation: weight of distance vs edges"),
    ] = 0.05,
) -> np.ndarray:
    """Cells grown from ``seeds`` over each plane; cell i holds nucleus i."""
    stack = as_stack(stack, "identify_secondary")
    seed_planes = _required_planes(seeds, "seeds", "identify_secondary")
    smooth = gaussian_stack(stack, smoothing)
    out = np.zeros(stack.shape, dtype=np.int32)
    for i, plane in enumerate(smooth):
        seed = as_labels_plane(seed_planes[i], plane.shape, "identify_secondary")
        limit = threshold_value(plane, threshold) * threshold_correction
        grow_cells(
            plane,
            seed,
            method=method,
            threshold=limit,
            distance=distance,
            regularization=regularization,
            out=out[i],
        )
    return out


def _identify_tertiary(
    stack: np.ndarray,
    *,
    subtract: Annotated[
        LabelsName,
        Meta(description="the smaller objects to remove (usually the nuclei)"),
    ] = "",
) -> np.ndarray:
    """Each object minus the overlapping smaller object, keeping its id."""
    stack = as_stack(stack, "identify_tertiary")
    smaller = _required_planes(subtract, "subtract", "identify_tertiary")
    out = np.empty(stack.shape, dtype=np.int32)
    for i, plane in enumerate(stack):
        inner = as_labels_plane(smaller[i], plane.shape, "identify_tertiary")
        out[i] = subtract_objects(plane, inner)
    return out


def _filter_objects(
    stack: np.ndarray,
    *,
    feature: Annotated[
        _SHAPE_FEATURES, Meta(description="the measurement objects are kept by")
    ] = "area",
    low: Annotated[float, Meta(ge=0, le=1_000_000, description="smallest kept")] = 0.0,
    high: Annotated[
        float, Meta(ge=0, le=1_000_000, description="largest kept")
    ] = 1_000_000.0,
    exclude_border: Annotated[
        bool, Meta(description="also drop objects touching the field's edge")
    ] = False,
) -> np.ndarray:
    """Objects whose ``feature`` lies in [low, high]; relabelled 1..n."""
    stack = as_stack(stack, "filter_objects")
    out = np.empty(stack.shape, dtype=np.int32)
    for i, plane in enumerate(stack):
        values = shape_features(plane)[feature].astype(np.float64)
        if exclude_border:
            values[touching_border(plane)] = np.nan
        out[i] = keep_within(plane, values, low=low, high=high)
    return out


identify_primary = Function(
    name="identify_primary",
    version="2",  # 2: holes filled per object after splitting; "blob" markers
    impl=_identify_primary,
    help=(
        "Find nuclei: smooth, threshold, split touching nuclei (seeded "
        "watershed by shape, shape + blob response, or intensity), fill holes "
        "and filter by size."
    ),
    category="segmentation",
    input="image",
    output="labels",
)

identify_secondary = Function(
    name="identify_secondary",
    version="1",
    impl=_identify_secondary,
    help=(
        "Find cells: grow each nucleus over a cytoplasm or membrane channel "
        "(propagation, watershed or distance), up to a distance limit."
    ),
    category="segmentation",
    input="image",
    output="labels",
)

identify_tertiary = Function(
    name="identify_tertiary",
    version="1",
    impl=_identify_tertiary,
    help="Cytoplasm: each cell minus its nucleus, keeping the cell's id.",
    category="objects",
    input="labels",
    output="labels",
)

filter_objects = Function(
    name="filter_objects",
    version="1",
    impl=_filter_objects,
    help="Keep objects whose shape measurement lies in a range; relabel 1..n.",
    category="objects",
    input="labels",
    output="labels",
)
