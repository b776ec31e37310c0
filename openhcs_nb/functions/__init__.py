"""The built-in processing functions and the default catalogue.

Each name exported here is a :class:`~openhcs_nb.pipeline.catalogue.Function`
(callable like the function it wraps). Every function takes a 3-D
``(n, y, x)`` stack and works on each plane separately, except the
projections, which reduce ``n`` to 1. :func:`builtin_catalogue` lists them
explicitly; :func:`select_impl` picks the NumPy or CuPy implementation for a
device.
"""

from __future__ import annotations

from openhcs_nb.functions._cells import (
    filter_objects,
    identify_primary,
    identify_secondary,
    identify_tertiary,
)
from openhcs_nb.functions._dispatch import select_impl
from openhcs_nb.functions._illumination import correct_illumination
from openhcs_nb.functions._intensity import (
    gaussian_blur,
    percentile_normalize,
    subtract_background,
)
from openhcs_nb.functions._measure import measure_objects
from openhcs_nb.functions._objects import expand_labels, remove_small_objects
from openhcs_nb.functions._projection import composite_channels, project_z
from openhcs_nb.functions._quality import measure_image_quality
from openhcs_nb.functions._segmentation import (
    fill_holes,
    label_objects,
    watershed_split,
)
from openhcs_nb.functions._threshold import (
    threshold_li,
    threshold_manual,
    threshold_otsu,
)
from openhcs_nb.spec import Catalogue

__all__ = [
    "builtin_catalogue",
    "composite_channels",
    "correct_illumination",
    "expand_labels",
    "fill_holes",
    "filter_objects",
    "gaussian_blur",
    "identify_primary",
    "identify_secondary",
    "identify_tertiary",
    "label_objects",
    "measure_image_quality",
    "measure_objects",
    "percentile_normalize",
    "project_z",
    "remove_small_objects",
    "select_impl",
    "subtract_background",
    "threshold_li",
    "threshold_manual",
    "threshold_otsu",
    "watershed_split",
]


def builtin_catalogue() -> Catalogue:
    """The catalogue of built-in functions, in menu order (a new one per call)."""
    return Catalogue(
        [
            correct_illumination,
            percentile_normalize,
            gaussian_blur,
            subtract_background,
            threshold_otsu,
            threshold_li,
            threshold_manual,
            identify_primary,
            identify_secondary,
            identify_tertiary,
            filter_objects,
            fill_holes,
            label_objects,
            watershed_split,
            remove_small_objects,
            expand_labels,
            measure_objects,
            measure_image_quality,
            project_z,
            composite_channels,
        ]
    )
