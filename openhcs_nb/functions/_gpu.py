"""The device twins the catalogue names (``gpu_impl="..._gpu:<name>"``).

Every twin has its NumPy function's signature and runs on whichever array
namespace its input belongs to (:mod:`openhcs_nb.functions._xp`): CuPy on a
GPU worker, NumPy in the CPU tests, which therefore execute exactly the code
a GPU runs. The twins live in ``_device_filters`` (intensity, projections),
``_device_segment`` (thresholds, labelling, label clean-up) and
``_device_measure`` (``measure_objects``: its sums over labels on the device,
the rest of its table on the host). Functions not listed here (watershed
splitting, object identification, image quality) run on the CPU: their
cores (watershed, propagation, skimage's features) have no CuPy / cuCIM
equivalent.
"""

from __future__ import annotations

from openhcs_nb.functions._device_filters import (
    composite_channels,
    correct_illumination,
    gaussian_blur,
    percentile_normalize,
    project_z,
    subtract_background,
)
from openhcs_nb.functions._device_measure import measure_objects
from openhcs_nb.functions._device_segment import (
    expand_labels,
    fill_holes,
    label_objects,
    remove_small_objects,
    threshold_li,
    threshold_manual,
    threshold_otsu,
)

__all__ = [
    "composite_channels",
    "correct_illumination",
    "expand_labels",
    "fill_holes",
    "gaussian_blur",
    "label_objects",
    "measure_objects",
    "percentile_normalize",
    "project_z",
    "remove_small_objects",
    "subtract_background",
    "threshold_li",
    "threshold_manual",
    "threshold_otsu",
]
