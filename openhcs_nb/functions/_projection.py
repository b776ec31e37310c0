"""Functions that reduce the stack axis to a single plane.

Used with ``variable_components=["z"]`` (a z-stack becomes one plane) or
``["channel"]`` (channels become one composite); the output is ``(1, y, x)``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from msgspec import Meta

from openhcs_nb.functions._common import as_stack, check_order
from openhcs_nb.functions._intensity import (
    Percentile,
    plane_percentiles,
    rescale_plane,
)
from openhcs_nb.spec import Function


def _project_z(
    stack: np.ndarray,
    *,
    method: Annotated[
        Literal["max", "mean"],
        Meta(description="maximum keeps the dtype; mean gives float32"),
    ] = "max",
) -> np.ndarray:
    """Maximum (dtype kept) or mean (float32) over the stack axis."""
    stack = as_stack(stack, "project_z")
    if method == "max":
        return stack.max(axis=0, keepdims=True)
    return stack.mean(axis=0, dtype=np.float32, keepdims=True)


def _composite_channels(
    stack: np.ndarray,
    *,
    method: Annotated[
        Literal["mean", "max"], Meta(description="how the scaled planes are combined")
    ] = "mean",
    low: Annotated[Percentile, Meta(description="percentile mapped to 0")] = 0.0,
    high: Annotated[Percentile, Meta(description="percentile mapped to 1")] = 100.0,
) -> np.ndarray:
    """Normalise each plane to [0, 1], then combine them into one float32 plane.

    With the default percentiles (0, 100) each plane is min-max scaled, so a
    dim channel weighs as much as a bright one.
    """
    stack = as_stack(stack, "composite_channels")
    check_order(low, high, "composite_channels", ("low", "high"))
    out = np.zeros((1, *stack.shape[1:]), dtype=np.float32)
    scratch = np.empty(stack.shape[1:], dtype=np.float32)
    for plane in stack:
        if low == 0.0 and high == 100.0:
            lo, hi = float(plane.min()), float(plane.max())
        else:
            lo, hi = plane_percentiles(plane, low, high)
        rescale_plane(plane, lo, hi, scratch)
        if method == "max":
            np.maximum(out[0], scratch, out=out[0])
        else:
            np.add(out[0], scratch, out=out[0])
    if method == "mean" and stack.shape[0]:
        np.multiply(out, np.float32(1.0 / stack.shape[0]), out=out)
    return out


project_z = Function(
    name="project_z",
    version="1",
    impl=_project_z,
    help="Project the stack to one plane: maximum or mean intensity.",
    category="projection",
    input="image",
    output="image",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:project_z",
)

composite_channels = Function(
    name="composite_channels",
    version="1",
    impl=_composite_channels,
    help="Scale each plane to [0, 1] and combine them into one plane (float32).",
    category="projection",
    input="image",
    output="image",
    memory_type="cupy",
    gpu_impl="openhcs_nb.functions._gpu:composite_channels",
)
