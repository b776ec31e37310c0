"""Tertiary objects, parent/child relations, filters and match_f1 vs slow oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from skimage.segmentation import expand_labels

from openhcs_nb.functions._relate import (
    children_count,
    filter_objects,
    match_f1,
    parent_of,
    present_labels,
    subtract_objects,
    touching_border,
)


def random_labels(
    rng: np.random.Generator, shape: tuple[int, int], n: int
) -> np.ndarray:
    """Random touching blobs with gaps in their ids (not 1..n) and debris."""
    seeds = np.zeros(shape, np.int32)
    ys = rng.integers(0, shape[0], n)
    xs = rng.integers(0, shape[1], n)
    ids = rng.choice(np.arange(1, 4 * n), n, replace=False).astype(np.int32)
    seeds[ys, xs] = ids
    grown = expand_labels(seeds, distance=int(rng.integers(2, 6)))
    grown[rng.random(shape) < 0.05] = 0  # speckle holes
    return grown.astype(np.int32)


def _slow_parent(children: np.ndarray, parents: np.ndarray) -> list[int]:
    out = []
    for c in sorted(set(children.ravel()) - {0}):
        under = parents[children == c]
        under = under[under > 0]
        if len(under) == 0:
            out.append(0)
            continue
        counts = np.bincount(under)
        out.append(int(np.argmax(counts)))  # argmax takes the lowest id on ties
    return out


@pytest.mark.parametrize("seed", range(6))
def test_when_labels_are_random_then_parent_of_matches_slow_loop(seed):
    rng = np.random.default_rng(seed)
    children = random_labels(rng, (40, 50), 25)
    parents = random_labels(rng, (40, 50), 8)
    assert parent_of(children, parents).tolist() == _slow_parent(children, parents)


@pytest.mark.parametrize("seed", range(4))
def test_when_labels_are_random_then_children_count_matches_slow_loop(seed):
    rng = np.random.default_rng(10 + seed)
    children = random_labels(rng, (40, 50), 30)
    parents = random_labels(rng, (40, 50), 6)
    kids = sorted(set(children.ravel()) - {0})
    owner = dict(zip(kids, _slow_parent(children, parents), strict=True))
    slow = [
        sum(1 for k in kids if owner[k] == p)
        for p in sorted(set(parents.ravel()) - {0})
    ]
    assert children_count(parents, children).tolist() == slow


def test_when_child_lies_outside_all_parents_then_parent_is_zero():
    children = np.zeros((10, 10), np.int32)
    parents = np.zeros((10, 10), np.int32)
    children[1:3, 1:3] = 4
    children[6:9, 6:9] = 9
    parents[5:10, 5:10] = 2
    assert parent_of(children, parents).tolist() == [0, 2]
    assert children_count(parents, children).tolist() == [1]


def test_when_nucleus_is_subtracted_then_cytoplasm_keeps_cell_id():
    cells = np.zeros((20, 30), np.int32)
    nuclei = np.zeros((20, 30), np.int32)
    cells[2:18, 2:14] = 1
    cells[2:18, 15:28] = 2
    cells[5:8, 28:30] = 3  # a cell its nucleus covers entirely
    nuclei[6:12, 5:10] = 1
    nuclei[6:12, 18:25] = 2
    nuclei[5:8, 28:30] = 3
    cyto = subtract_objects(cells, nuclei)
    assert cyto.dtype == np.int32
    assert present_labels(cyto).tolist() == [1, 2]
    np.testing.assert_array_equal(cyto > 0, (cells > 0) & (nuclei == 0))
    np.testing.assert_array_equal(cyto[cyto > 0], cells[cyto > 0])


def test_when_values_are_filtered_then_kept_objects_are_relabelled_in_order():
    rng = np.random.default_rng(3)
    labels = random_labels(rng, (60, 60), 20)
    present = present_labels(labels)
    values = rng.uniform(0, 10, len(present))
    values[2] = np.nan
    out = filter_objects(labels, values, low=2.0, high=7.5)
    kept = [lab for lab, v in zip(present, values, strict=True) if 2.0 <= v <= 7.5]
    assert out.dtype == np.int32
    assert present_labels(out).tolist() == list(range(1, len(kept) + 1))
    for new, old in enumerate(kept, start=1):
        np.testing.assert_array_equal(out == new, labels == old)
    assert not np.isin(out[labels == present[2]], np.arange(1, 100)).any()


def test_when_values_do_not_match_objects_then_filter_raises():
    labels = np.array([[0, 1], [2, 2]], np.int32)
    with pytest.raises(ValueError, match="one value per object"):
        filter_objects(labels, np.array([1.0]), low=0, high=1)


def test_when_objects_reach_the_edge_then_touching_border_flags_them():
    rng = np.random.default_rng(4)
    labels = random_labels(rng, (50, 40), 15)
    slow = []
    for lab in present_labels(labels):
        ys, xs = np.nonzero(labels == lab)
        slow.append(
            bool(ys.min() == 0 or xs.min() == 0 or ys.max() == 49 or xs.max() == 39)
        )
    assert touching_border(labels).tolist() == slow
    assert any(slow) and not all(slow)


def _brute_f1(
    pred: np.ndarray, truth: np.ndarray, iou: float
) -> tuple[float, int, int, int]:
    """Pure-Python IoU of every pair, then a maximum-cardinality assignment."""
    ps = sorted(set(pred.ravel()) - {0})
    ts = sorted(set(truth.ravel()) - {0})
    ok = np.zeros((len(ps), len(ts)))
    for i, p in enumerate(ps):
        a = pred == p
        for j, t in enumerate(ts):
            b = truth == t
            ok[i, j] = (a & b).sum() / (a | b).sum() >= iou
    rows, cols = linear_sum_assignment(-ok) if ok.size else ([], [])
    tp = int(sum(ok[r, c] for r, c in zip(rows, cols, strict=True)))
    fp, fn = len(ps) - tp, len(ts) - tp
    return (2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0), tp, fp, fn


@pytest.mark.parametrize("seed", range(8))
def test_when_labels_are_random_then_match_f1_equals_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    truth = random_labels(rng, (48, 48), 18)
    # A noisy prediction: shifted, some objects merged, some dropped, debris.
    pred = np.roll(truth, int(rng.integers(-2, 3)), axis=int(rng.integers(0, 2)))
    ids = present_labels(pred)
    pred[pred == ids[0]] = ids[1]
    pred[pred == ids[-1]] = 0
    pred[40:44, 2:6] = 9999
    for threshold in (0.5, 0.7):
        assert match_f1(pred, truth, threshold) == pytest.approx(
            _brute_f1(pred, truth, threshold)
        )


def test_when_images_are_identical_or_empty_then_f1_is_one():
    rng = np.random.default_rng(1)
    labels = random_labels(rng, (30, 30), 10)
    n = len(present_labels(labels))
    assert match_f1(labels, labels) == (1.0, n, 0, 0)
    empty = np.zeros((5, 5), np.int32)
    assert match_f1(empty, empty) == (1.0, 0, 0, 0)
    assert match_f1(labels, np.zeros_like(labels)) == (0.0, 0, n, 0)


def test_when_image_is_large_then_match_f1_is_exact_on_known_edits():
    rng = np.random.default_rng(2)
    truth = random_labels(rng, (1024, 1024), 3000)
    ids = present_labels(truth)
    area = np.bincount(truth.ravel())
    # Renumber every object at random, then shrink 10% of them to one pixel.
    lut = np.zeros(int(ids.max()) + 1, np.int32)
    lut[ids] = rng.permutation(len(ids)).astype(np.int32) + 1
    pred = lut[truth]
    shrunk = rng.choice(ids[area[ids] >= 3], len(ids) // 10, replace=False)
    pred[np.isin(truth, shrunk)] = 0
    values, first = np.unique(truth.ravel(), return_index=True)
    keep = first[np.isin(values, shrunk)]
    pred.ravel()[keep] = lut[truth.ravel()[keep]]
    f1, tp, fp, fn = match_f1(pred, truth)
    assert (tp, fp, fn) == (len(ids) - len(shrunk), len(shrunk), len(shrunk))
    assert f1 == pytest.approx(tp / len(ids))
