"""remove_small_objects and expand_labels."""

from __future__ import annotations

import numpy as np
import pytest
from fn_shapes import discs
from skimage import segmentation

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions import expand_labels, remove_small_objects


def _labels() -> np.ndarray:
    labels = np.zeros((1, 30, 30), np.int32)
    labels[0, 0:2, 0:2] = 4  # area 4
    labels[0, 5:15, 5:15] = 9  # area 100
    labels[0, 20:30, 0:30] = 2  # area 300
    return labels


def test_when_objects_are_out_of_range_then_they_are_removed_and_relabelled():
    out = remove_small_objects(_labels(), min_size=10, max_size=200)
    assert out.dtype == np.int32
    assert sorted(np.unique(out)) == [0, 1]
    assert (out == 1).sum() == 100
    assert out[0, 10, 10] == 1


def test_when_all_objects_are_kept_then_labels_stay_unique_in_scan_order():
    out = remove_small_objects(_labels(), min_size=1)
    assert sorted(np.unique(out)) == [0, 1, 2, 3]
    assert [out[0, 0, 0], out[0, 10, 10], out[0, 25, 5]] == [2, 3, 1]


def test_when_min_size_exceeds_max_size_then_it_is_refused():
    with pytest.raises(PipelineError) as info:
        remove_small_objects(_labels(), min_size=50, max_size=40)
    assert info.value.field == "min_size"


def test_when_labels_expand_then_they_never_overlap_and_keep_their_pixels():
    shape = (60, 80)
    seeds = discs(shape, [(30, 25, 6), (30, 45, 6)])
    labels = np.zeros((1, *shape), np.int32)
    labels[0][seeds[0]], labels[0][seeds[1]] = 1, 2
    out = expand_labels(labels, distance=10)
    assert out.dtype == np.int32
    assert out[0][seeds[0]].tolist() == [1] * int(seeds[0].sum())
    assert out[0][seeds[1]].tolist() == [2] * int(seeds[1].sum())
    # Between the seeds each pixel goes to the nearer one: split at x = 35.
    assert out[0, 30, 34] == 1 and out[0, 30, 36] == 2
    assert out[0, 30, 5] == 0  # farther than 10 px from any object
    np.testing.assert_array_equal(out[0], segmentation.expand_labels(labels[0], 10))


def test_when_no_labels_or_zero_distance_then_expand_changes_nothing():
    empty = np.zeros((1, 10, 10), np.int32)
    np.testing.assert_array_equal(expand_labels(empty), empty)
    labels = _labels()
    np.testing.assert_array_equal(expand_labels(labels, distance=0), labels)
