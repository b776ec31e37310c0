"""A classical nuclei pipeline scored against real hand-made masks.

The image and mask come from the StarDist wheel (a 2018 Data Science Bowl
crop, see ``tests/real_images.py``): touching nuclei of uneven brightness that
nobody drew to suit our functions. The pipeline parameters were chosen once
(background radius 30, blur 1, watershed min distance 5) and are not tuned
per image; the floor is the F1 measured with them minus a margin.
"""

from __future__ import annotations

import numpy as np
import pytest
from real_images import RealImagesUnavailableError, real_nuclei_images

from openhcs_nb.defaults import NUCLEI  # the cells pipeline's nuclei chain
from openhcs_nb.functions import (
    fill_holes,
    gaussian_blur,
    identify_primary,
    remove_small_objects,
    subtract_background,
    threshold_otsu,
    watershed_split,
)
from openhcs_nb.functions._relate import match_f1

#: identify_primary with this image's scale (nuclei of ~8 px radius):
#: measured 0.743 at IoU 0.5 on dsb2018_img2d (0.746 when holes were
#: filled before declumping rather than per object after it).
F1_FLOOR = 0.70
#: cells_pipeline()'s nuclei chain, tuned on the demo plate's larger
#: nuclei and not changed for this image: measured 0.828 (Li threshold,
#: blob declumping; 0.586 with the Otsu threshold and shape declumping).
DEFAULT_FLOOR = 0.78
#: The older chain of separate functions: measured 0.737.
CHAIN_FLOOR = 0.70


def f1(truth: np.ndarray, found: np.ndarray) -> float:
    return match_f1(found, truth, 0.5)[0]


def segment_nuclei(image: np.ndarray) -> np.ndarray:
    """Background, blur, Otsu, fill, watershed, size filter: one ``(y, x)`` plane."""
    stack = image[None].astype(np.float32)
    stack = gaussian_blur(subtract_background(stack, radius=30), sigma=1.0)
    mask = fill_holes(threshold_otsu(stack))
    return remove_small_objects(watershed_split(mask, min_distance=5), min_size=15)[0]


def primary_at_scale(image: np.ndarray) -> np.ndarray:
    """identify_primary with settings for this image's nucleus size."""
    stack = image[None].astype(np.float32)
    return identify_primary(stack, min_distance=4, smoothing=1.0, min_size=15)[0]


def default_chain(image: np.ndarray) -> np.ndarray:
    """cells_pipeline()'s nuclei chain, exactly as it ships."""
    value = image[None].astype(np.float32)
    for fn, kwargs in NUCLEI:
        value = fn(value, **kwargs)
    return value[0]


@pytest.fixture(scope="module")
def images() -> list[tuple[str, np.ndarray, np.ndarray]]:
    try:
        return real_nuclei_images()
    except RealImagesUnavailableError as exc:
        pytest.skip(str(exc))


def test_when_real_nuclei_are_segmented_then_f1_stays_above_the_floor(images):
    assert images, "the wheel held no annotated image"
    floors = {"primary": F1_FLOOR, "default": DEFAULT_FLOOR, "chain": CHAIN_FLOOR}
    methods = {
        "primary": primary_at_scale,
        "default": default_chain,
        "chain": segment_nuclei,
    }
    for name, image, labels in images:
        assert image.shape == labels.shape
        assert len(np.unique(labels)) > 50  # a real crowded field, not a toy
        scores = {k: f1(labels, method(image)) for k, method in methods.items()}
        print(f"{name} F1 at IoU 0.5:", {k: round(v, 3) for k, v in scores.items()})
        for key, score in scores.items():
            assert score >= floors[key], (name, key, score)
