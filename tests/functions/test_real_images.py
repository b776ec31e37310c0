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

from openhcs_nb.functions import (
    fill_holes,
    gaussian_blur,
    remove_small_objects,
    subtract_background,
    threshold_otsu,
    watershed_split,
)

F1_FLOOR = 0.70  # measured 0.737 on dsb2018_img2d (IoU 0.5)


def match_f1(truth: np.ndarray, found: np.ndarray, iou: float = 0.5) -> float:
    """F1 of one-to-one matches with IoU above ``iou`` (> 0.5 makes them unique).

    Label ids need not be contiguous: only ids with pixels count as objects.
    """
    t, f = truth.ravel().astype(np.int64), found.ravel().astype(np.int64)
    n_f = int(f.max()) + 1
    overlap = np.bincount(t * n_f + f, minlength=(int(t.max()) + 1) * n_f)
    overlap = overlap.reshape(-1, n_f)
    area_t, area_f = overlap.sum(axis=1), overlap.sum(axis=0)
    union = area_t[:, None] + area_f[None, :] - overlap
    ratio = overlap[1:, 1:] / np.maximum(union[1:, 1:], 1)
    hits = int((ratio > iou).sum())
    objects = int((area_t[1:] > 0).sum() + (area_f[1:] > 0).sum())
    return 2.0 * hits / objects if objects else 1.0


def segment_nuclei(image: np.ndarray) -> np.ndarray:
    """Background, blur, Otsu, fill, watershed, size filter: one ``(y, x)`` plane."""
    stack = image[None].astype(np.float32)
    stack = gaussian_blur(subtract_background(stack, radius=30), sigma=1.0)
    mask = fill_holes(threshold_otsu(stack))
    return remove_small_objects(watershed_split(mask, min_distance=5), min_size=15)[0]


@pytest.fixture(scope="module")
def images() -> list[tuple[str, np.ndarray, np.ndarray]]:
    try:
        return real_nuclei_images()
    except RealImagesUnavailableError as exc:
        pytest.skip(str(exc))


def test_when_labels_are_compared_then_match_f1_counts_one_to_one_hits():
    truth = np.zeros((20, 20), np.int32)
    truth[2:8, 2:8], truth[10:18, 10:18] = 3, 7  # sparse ids
    assert match_f1(truth, truth) == 1.0
    shifted = np.roll(truth, 1, axis=1)
    assert match_f1(truth, shifted) == 1.0  # IoU 0.71 and 0.78
    merged = (truth > 0).astype(np.int32)
    assert match_f1(truth, merged) == pytest.approx(2 / 3)  # IoU 0.36 and 0.64
    half = np.where(truth == 7, 0, truth)
    assert match_f1(truth, half) == pytest.approx(2 / 3)


def test_when_real_nuclei_are_segmented_then_f1_stays_above_the_floor(images):
    assert images, "the wheel held no annotated image"
    scores = {}
    for name, image, labels in images:
        assert image.shape == labels.shape
        assert len(np.unique(labels)) > 50  # a real crowded field, not a toy
        scores[name] = match_f1(labels, segment_nuclei(image))
    print("F1 at IoU 0.5:", {k: round(v, 3) for k, v in scores.items()})
    assert min(scores.values()) >= F1_FLOOR, scores
