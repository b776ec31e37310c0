"""measure_objects: the per-object table."""

from __future__ import annotations

import numpy as np
import pytest

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions import measure_objects

MEASURE = measure_objects.impl


def _field() -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((6, 8), np.int32)
    labels[0:2, 0:3] = 3  # 6 px, centroid (0.5, 1.0)
    labels[4:6, 6:8] = 7  # 4 px, centroid (4.5, 6.5)
    dapi = np.arange(48, dtype=np.uint16).reshape(6, 8)
    gfp = np.full((6, 8), 2, np.uint16)
    gfp[4, 6] = 6
    return np.stack([dapi, gfp]).astype(np.float32), labels


def test_when_measured_then_areas_centroids_and_means_are_exact():
    stack, labels = _field()
    out, side = MEASURE(
        stack, labels=labels, names=("DAPI", "GFP"), shape=False, intensity=False
    )
    assert out is stack
    table = side["objects"]
    assert list(table) == [
        "label",
        "area",
        "centroid_y",
        "centroid_x",
        "intensity_mean_DAPI",
        "intensity_mean_GFP",
    ]
    np.testing.assert_array_equal(table["label"], [3, 7])
    assert table["label"].dtype == np.int32
    np.testing.assert_array_equal(table["area"], [6, 4])
    assert table["area"].dtype == np.int64
    np.testing.assert_array_equal(table["centroid_y"], [0.5, 4.5])
    np.testing.assert_array_equal(table["centroid_x"], [1.0, 6.5])
    dapi_3 = np.mean([0, 1, 2, 8, 9, 10])
    dapi_7 = np.mean([38, 39, 46, 47])
    np.testing.assert_allclose(table["intensity_mean_DAPI"], [dapi_3, dapi_7])
    np.testing.assert_allclose(table["intensity_mean_GFP"], [2.0, 3.0])
    assert all(table[k].dtype == np.float64 for k in list(table)[2:])


def test_when_groups_are_on_then_each_adds_its_columns_per_channel():
    stack, labels = _field()
    _, side = MEASURE(stack, labels=labels, names=("DAPI", "GFP"))
    table = side["objects"]
    for key in ("perimeter", "solidity", "feret_max", "form_factor"):
        assert key in table and len(table[key]) == 2
    for stat in ("median", "std", "min", "max", "integrated", "edge_mean"):
        assert f"intensity_{stat}_DAPI" in table and f"intensity_{stat}_GFP" in table
    np.testing.assert_allclose(table["intensity_max_GFP"], [2.0, 6.0])
    _, side = MEASURE(
        stack,
        labels=labels,
        names=("DAPI", "GFP"),
        colocalisation=True,
        neighbour_distance=10.0,
        texture=True,
        texture_scale=1,
    )
    table = side["objects"]
    assert "pearson_DAPI_GFP" in table and "neighbors_count" in table
    assert any(k.startswith("texture_contrast_1_DAPI") for k in table)
    np.testing.assert_array_equal(table["neighbors_count"], [1, 1])  # 5 px apart


def test_when_a_parent_set_is_given_then_each_object_names_its_parent():
    stack, labels = _field()
    parents = np.zeros_like(labels)
    parents[0:3, 0:4] = 9  # covers object 3
    _, side = MEASURE(
        stack,
        labels=labels,
        names=("a", "b"),
        parent=parents[None],
        children=labels[None],
    )
    table = side["objects"]
    np.testing.assert_array_equal(table["parent_parent"], [9, 0])
    np.testing.assert_array_equal(table["children_children_count"], [1, 1])


def test_when_labels_come_as_a_one_plane_stack_then_they_are_accepted():
    stack, labels = _field()
    _, side = MEASURE(stack, labels=labels[None], names=("a", "b"))
    np.testing.assert_array_equal(side["objects"]["area"], [6, 4])


def test_when_there_are_no_objects_then_columns_are_empty_with_their_dtypes():
    stack, _ = _field()
    _, side = MEASURE(stack, labels=np.zeros((6, 8), np.int32), names=("a", "b"))
    table = side["objects"]
    assert all(len(column) == 0 for column in table.values())
    assert table["label"].dtype == np.int32
    assert table["area"].dtype == np.int64
    assert table["intensity_mean_b"].dtype == np.float64


def test_when_names_are_missing_then_planes_are_numbered():
    stack, labels = _field()
    _, side = MEASURE(stack, labels=labels)
    assert "intensity_mean_0" in side["objects"]
    assert "intensity_mean_1" in side["objects"]


@pytest.mark.parametrize(
    ("labels", "names", "field"),
    [
        (np.zeros((5, 8), np.int32), ("a", "b"), "labels"),
        (None, ("a", "b"), "labels"),
        (np.zeros((6, 8), np.float32), ("a", "b"), "labels"),
        (np.zeros((6, 8), np.int32), ("a",), "names"),
        (np.zeros((6, 8), np.int32), ("a", "a"), "names"),
    ],
)
def test_when_context_does_not_fit_then_the_error_names_the_field(labels, names, field):
    stack, _ = _field()
    with pytest.raises(PipelineError) as info:
        MEASURE(stack, labels=labels, names=names)
    assert info.value.field == field
