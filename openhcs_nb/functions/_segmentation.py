"""Mask and label functions: filling holes, labelling, splitting nuclei.

Label images are int32 with 0 as background; each plane is labelled on its
own, with labels 1..count.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from msgspec import Meta
from scipy import ndimage as ndi

from openhcs_nb.functions._common import FULL_2D, as_stack
from openhcs_nb.functions._watershed import split_plane
from openhcs_nb.spec import Function

_CROSS_2D = ndi.generate_binary_structure(2, 1)


def fill_plane_holes(mask: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill background regions not 4-connected to the border, into ``out``.

    Labelling the background once and keeping the components that touch the
    border is ~4x faster than ``ndi.binary_fill_holes`` (iterated dilations)
    and gives the same result.
    """
    background, _ = ndi.label(~mask, structure=_CROSS_2D)
    outside = np.unique(
        np.concatenate(
            (background[0], background[-1], background[:, 0], background[:, -1])
        )
    )
    keep = np.zeros(int(background.max()) + 1, dtype=bool)
    keep[outside] = True
    keep[0] = False
    np.logical_not(keep[background], out=out)
    return out


def fill_object_holes(labels: np.ndarray) -> np.ndarray:
    """``labels`` with each hole enclosed by one object given to that object.

    A hole (background not 4-connected to the border) whose edge-neighbours
    all carry one label is filled with it; a gap enclosed by several touching
    objects, such as the space between three nuclei, stays background. So
    holes can be filled after splitting clumps without merging the gaps
    between them into the shapes the splitting reads.
    """
    foreground = labels > 0
    holes = fill_plane_holes(foreground, np.empty_like(foreground))
    holes &= ~foreground
    hole_ids, count = ndi.label(holes, structure=_CROSS_2D)
    if count == 0:
        return labels
    index = np.arange(1, count + 1)
    top = np.iinfo(np.int32).max
    highest = ndi.grey_dilation(labels, footprint=_CROSS_2D)
    lowest = ndi.grey_erosion(np.where(foreground, labels, top), footprint=_CROSS_2D)
    high = np.asarray(ndi.maximum(highest, hole_ids, index), dtype=np.int64)
    low = np.asarray(ndi.minimum(lowest, hole_ids, index), dtype=np.int64)
    fill = np.zeros(count + 1, dtype=labels.dtype)
    fill[1:] = np.where(high == low, high, 0)
    return np.where(holes, fill[hole_ids], labels)


def _fill_holes(stack: np.ndarray) -> np.ndarray:
    """Fill enclosed holes in each plane's mask."""
    stack = as_stack(stack, "fill_holes")
    out = np.empty(stack.shape, dtype=bool)
    for i, plane in enumerate(stack):
        fill_plane_holes(plane.astype(bool, copy=False), out[i])
    return out


def _label_objects(
    stack: np.ndarray,
    *,
    connectivity: Annotated[
        Literal[1, 2],
        Meta(description="1: pixels touch by edges; 2: by edges or corners"),
    ] = 1,
) -> np.ndarray:
    """Connected components of each plane's mask, as int32 labels."""
    stack = as_stack(stack, "label_objects")
    structure = _CROSS_2D if connectivity == 1 else FULL_2D
    out = np.empty(stack.shape, dtype=np.int32)
    for i, plane in enumerate(stack):
        ndi.label(plane, structure=structure, output=out[i])
    return out


def _watershed_split(
    stack: np.ndarray,
    *,
    min_distance: Annotated[
        int,
        Meta(
            ge=1, le=100, description="minimum distance between object centres (pixels)"
        ),
    ] = 5,
) -> np.ndarray:
    """Label each plane's mask, splitting touching round objects."""
    stack = as_stack(stack, "watershed_split")
    out = np.empty(stack.shape, dtype=np.int32)
    for i, plane in enumerate(stack):
        split_plane(plane.astype(bool, copy=False), int(min_distance), out[i])
    return out


fill_holes = Function(
    name="fill_holes",
    version="1",
    impl=_fill_holes,
    help="Fill holes (background not connected to the image border) in masks.",
    category="segmentation",
    input="mask",
    output="mask",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:fill_holes",
)

label_objects = Function(
    name="label_objects",
    version="1",
    impl=_label_objects,
    help="Give each connected region of the mask its own label.",
    category="segmentation",
    input="mask",
    output="labels",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:label_objects",
)

watershed_split = Function(
    name="watershed_split",
    version="1",
    impl=_watershed_split,
    help=(
        "Label the mask and split touching round objects (distance transform, "
        "peak markers, watershed)."
    ),
    category="segmentation",
    input="mask",
    output="labels",
)
