"""neighbour_features: against brute-force pairwise pixel distances."""

from __future__ import annotations

import numpy as np
import pytest
from feature_images import crowded_field, irregular_labels
from scipy import ndimage as ndi
from scipy.spatial.distance import cdist

from openhcs_nb.functions._features_neighbours import neighbour_features


def _brute_force(labels: np.ndarray, distance: float) -> dict[str, np.ndarray]:
    present = np.unique(labels[labels > 0])
    pixels = {label: np.argwhere(labels == label) for label in present}
    count, touching, nearest = [], [], []
    centroids = np.array([pixels[label].mean(axis=0) for label in present])
    for i, label in enumerate(present):
        mask = labels == label
        outline = np.argwhere(mask & ~ndi.binary_erosion(mask, np.ones((3, 3))))
        others = [o for o in present if o != label]
        close = [o for o in others if cdist(pixels[label], pixels[o]).min() <= distance]
        count.append(len(close))
        if others:
            rest = np.concatenate([pixels[o] for o in others])
            near = cdist(outline, rest).min(axis=1) <= distance
            touching.append(100.0 * near.mean())
            gaps = np.hypot(*(centroids[np.arange(len(present)) != i] - centroids[i]).T)
            nearest.append(gaps.min())
        else:
            touching.append(0.0)
            nearest.append(np.nan)
    return {
        "neighbors_count": np.array(count),
        "percent_touching": np.array(touching),
        "nearest_neighbor_distance": np.array(nearest),
    }


@pytest.mark.parametrize(
    ("crowded", "seed", "distance"),
    [(False, 0, 9.0), (True, 0, 1.0), (True, 1, 1.5), (True, 2, 2.5), (True, 3, 9.0)],
)
def test_when_objects_are_irregular_then_columns_match_brute_force(
    crowded, seed, distance
):
    rng = np.random.default_rng(seed)
    labels = crowded_field(rng, 96, 24)[0] if crowded else irregular_labels(rng)
    table = neighbour_features(labels, distance=distance)
    oracle = _brute_force(labels, distance)
    if crowded:
        assert oracle["neighbors_count"].max() >= 3  # the field really is crowded
    np.testing.assert_array_equal(table["neighbors_count"], oracle["neighbors_count"])
    np.testing.assert_allclose(table["percent_touching"], oracle["percent_touching"])
    np.testing.assert_allclose(
        table["nearest_neighbor_distance"], oracle["nearest_neighbor_distance"]
    )


def test_when_two_objects_touch_then_each_counts_the_other():
    labels = irregular_labels(np.random.default_rng(3))
    table = neighbour_features(labels, distance=1.0)
    rows = np.isin(table["label"], [21, 22])
    assert np.all(table["neighbors_count"][rows] >= 1)
    assert np.all(table["percent_touching"][rows] > 0)
    lone = table["label"] == 30
    assert table["neighbors_count"][lone][0] == 0


def test_when_object_is_alone_then_nearest_distance_is_nan():
    labels = np.zeros((10, 10), np.int32)
    labels[2:5, 2:5] = 7
    table = neighbour_features(labels, distance=3.0)
    assert np.isnan(table["nearest_neighbor_distance"][0])
    assert table["nearest_neighbor_label"][0] == 0
    assert table["neighbors_count"][0] == 0


def test_when_label_values_are_sparse_ids_then_counts_are_unchanged():
    labels = crowded_field(np.random.default_rng(4), 96, 24)[0]
    dense = neighbour_features(labels, distance=2.0)
    sparse = neighbour_features(labels.astype(np.int64) * 7_000_000_001, distance=2.0)
    np.testing.assert_array_equal(sparse["neighbors_count"], dense["neighbors_count"])
    np.testing.assert_array_equal(sparse["percent_touching"], dense["percent_touching"])
