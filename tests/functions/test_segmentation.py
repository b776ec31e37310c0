"""fill_holes, label_objects and watershed_split."""

from __future__ import annotations

import numpy as np
import pytest
from fn_shapes import disc, discs, iou, random_nuclei
from scipy import ndimage as ndi
from skimage import feature, measure, segmentation

from openhcs_nb.functions import fill_holes, label_objects, watershed_split

SHAPE = (80, 100)


def test_when_mask_has_a_ring_then_fill_holes_fills_it():
    ring = disc(SHAPE, (40, 50), 20) & ~disc(SHAPE, (40, 50), 10)
    out = fill_holes(ring[None])
    assert out.dtype == bool
    np.testing.assert_array_equal(out[0], disc(SHAPE, (40, 50), 20))


def test_when_background_reaches_the_border_then_it_is_not_a_hole():
    cup = np.zeros(SHAPE, bool)
    cup[10:70, 10:20] = cup[60:70, 10:90] = cup[10:70, 80:90] = True  # open at the top
    np.testing.assert_array_equal(fill_holes(cup[None])[0], cup)


def test_when_masks_are_random_then_fill_holes_equals_scipy():
    rng = np.random.default_rng(0)
    stack = rng.random((3, 64, 64)) > 0.45
    out = fill_holes(stack)
    for plane, result in zip(stack, out, strict=True):
        np.testing.assert_array_equal(result, ndi.binary_fill_holes(plane))


def test_when_pixels_touch_diagonally_then_connectivity_decides_labels():
    mask = np.zeros((1, 5, 5), bool)
    mask[0, 1, 1] = mask[0, 2, 2] = mask[0, 4, 4] = True
    by_edge = label_objects(mask)
    by_corner = label_objects(mask, connectivity=2)
    assert by_edge.dtype == np.int32
    assert by_edge.max() == 3
    assert by_corner.max() == 2
    assert by_corner[0, 1, 1] == by_corner[0, 2, 2]


def test_when_stack_has_planes_then_each_plane_is_labelled_from_one():
    mask = np.zeros((2, 10, 10), bool)
    mask[0, 1:3, 1:3] = mask[0, 6:8, 6:8] = mask[1, 4:6, 4:6] = True
    labels = label_objects(mask)
    assert sorted(np.unique(labels[0])) == [0, 1, 2]
    assert sorted(np.unique(labels[1])) == [0, 1]


def test_when_two_equal_discs_touch_then_watershed_gives_two_labels():
    a, b = discs(SHAPE, [(40, 35, 12), (40, 55, 12)])
    labels = watershed_split((a | b)[None])[0]
    assert labels.dtype == np.int32
    assert sorted(np.unique(labels)) == [0, 1, 2]
    la, lb = labels[40, 35], labels[40, 55]
    assert la != lb
    assert iou(labels == la, a & ~b) > 0.9
    assert iou(labels == lb, b & ~a) > 0.9


def _skimage_split(mask: np.ndarray, min_distance: int) -> np.ndarray:
    dist = ndi.distance_transform_edt(mask)
    peaks = feature.peak_local_max(
        dist, min_distance=min_distance, labels=measure.label(mask)
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return segmentation.watershed(-dist, markers, mask=mask)


def _matched(ours: np.ndarray, theirs: np.ndarray, threshold: float) -> int:
    count = 0
    for label in np.unique(ours)[1:]:
        region = ours == label
        other = np.bincount(theirs[region]).argmax()
        if other and iou(region, theirs == other) >= threshold:
            count += 1
    return count


def test_when_unequal_discs_touch_then_split_matches_skimage_watershed():
    big, small = discs(SHAPE, [(40, 35, 15), (42, 58, 9)])
    mask = big | small
    ours = watershed_split(mask[None])[0]
    theirs = _skimage_split(mask, 5)
    assert ours.max() == 2
    assert _matched(ours, theirs, 0.95) == 2


def test_when_three_discs_form_a_chain_then_three_objects_result():
    parts = discs(SHAPE, [(40, 20, 9), (40, 36, 9), (40, 52, 9)])
    mask = parts[0] | parts[1] | parts[2]
    labels = watershed_split(mask[None])[0]
    assert labels.max() == 3
    assert len({labels[40, 20], labels[40, 36], labels[40, 52]}) == 3


def test_when_objects_are_apart_then_each_is_one_label():
    parts = discs(SHAPE, [(20, 20, 8), (60, 70, 11), (20, 80, 3)])
    mask = parts[0] | parts[1] | parts[2]
    labels = watershed_split(mask[None])[0]
    assert labels.max() == 3
    for part in parts:
        assert len(np.unique(labels[part])) == 1


def test_when_many_random_nuclei_then_split_agrees_with_skimage():
    rng = np.random.default_rng(11)
    mask, _ = random_nuclei(rng, 200, 60)
    ours = watershed_split(mask[None], min_distance=5)[0]
    theirs = _skimage_split(mask, 5)
    count = len(np.unique(theirs)) - 1
    assert ours.max() == pytest.approx(count, abs=2)
    assert _matched(ours, theirs, 0.8) >= 0.9 * count
    # Labels are 1..n, each object is connected, and no pixel is lost.
    assert sorted(np.unique(ours))[1:] == list(range(1, ours.max() + 1))
    np.testing.assert_array_equal(ours > 0, mask)
    for label in range(1, ours.max() + 1):
        assert ndi.label(ours == label, structure=np.ones((3, 3)))[1] == 1


def test_when_min_distance_is_large_then_touching_discs_stay_one_object():
    a, b = discs(SHAPE, [(40, 35, 12), (40, 55, 12)])
    labels = watershed_split((a | b)[None], min_distance=25)[0]
    assert labels.max() == 1


def test_when_planes_are_split_then_labels_restart_per_plane():
    a, b = discs(SHAPE, [(40, 35, 12), (40, 55, 12)])
    stack = np.stack([a | b, a, np.zeros(SHAPE, bool)])
    labels = watershed_split(stack)
    assert [int(p.max()) for p in labels] == [2, 1, 0]
