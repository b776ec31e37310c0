"""shape_features: every column against skimage.measure.regionprops."""

from __future__ import annotations

import numpy as np
import pytest
from feature_images import crowded_field, irregular_labels
from skimage.measure import regionprops, regionprops_table

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._features_shape import present_labels, shape_features

PROPS = {
    "area": "area",
    "perimeter": "perimeter",
    "convex_area": "area_convex",
    "solidity": "solidity",
    "extent": "extent",
    "eccentricity": "eccentricity",
    "major_axis_length": "axis_major_length",
    "minor_axis_length": "axis_minor_length",
    "orientation": "orientation",
    "feret_max": "feret_diameter_max",
    "bbox_area": "area_bbox",
}


@pytest.fixture(scope="module", params=[0, 1, 2])
def labels(request):
    return irregular_labels(np.random.default_rng(request.param))


@pytest.mark.parametrize("seed", [0, 1])
def test_when_objects_are_crowded_then_columns_match_regionprops(seed):
    crowded = crowded_field(np.random.default_rng(seed), 160, 40)[0]
    table = shape_features(crowded)
    oracle = regionprops_table(crowded, properties=["label", *PROPS.values()])
    for ours, theirs in PROPS.items():
        np.testing.assert_allclose(
            table[ours], oracle[theirs], rtol=1e-9, atol=1e-9, err_msg=ours
        )


def test_when_objects_are_irregular_then_columns_match_regionprops(labels):
    table = shape_features(labels)
    oracle = regionprops_table(labels, properties=["label", *PROPS.values()])
    assert np.array_equal(table["label"], oracle["label"])
    assert np.array_equal(table["label"], present_labels(labels))
    for ours, theirs in PROPS.items():
        np.testing.assert_allclose(
            table[ours], oracle[theirs], rtol=1e-9, atol=1e-9, err_msg=ours
        )


def test_when_measured_then_centroid_and_form_factor_follow_definitions(labels):
    table = shape_features(labels)
    for row, region in enumerate(regionprops(labels)):
        assert table["centroid_y"][row] == pytest.approx(region.centroid[0])
        assert table["centroid_x"][row] == pytest.approx(region.centroid[1])
        if region.perimeter > 0:
            expected = 4 * np.pi * region.area / region.perimeter**2
            assert table["form_factor"][row] == pytest.approx(expected)
        else:
            assert np.isnan(table["form_factor"][row])


def test_when_object_is_concave_then_solidity_is_below_one(labels):
    table = shape_features(labels)
    row = int(np.flatnonzero(table["label"] == 20)[0])
    assert table["solidity"][row] < 0.9
    ellipse_row = int(np.flatnonzero(table["label"] == 3)[0])
    assert table["solidity"][ellipse_row] > table["solidity"][row]


def test_when_field_is_empty_then_columns_are_empty():
    table = shape_features(np.zeros((8, 8), np.int32))
    assert all(column.size == 0 for column in table.values())
    assert "feret_max" in table


def test_when_labels_are_float_then_pipeline_error():
    with pytest.raises(PipelineError):
        shape_features(np.zeros((4, 4), np.float32))


def test_when_no_background_then_the_single_object_is_present():
    labels = np.full((5, 6), 4, np.int16)
    assert present_labels(labels).tolist() == [4]
    assert shape_features(labels)["area"].tolist() == [30.0]


def test_when_label_values_are_sparse_ids_then_rows_are_unchanged(labels):
    sparse = labels.astype(np.int64) * 10_000_000_019  # far beyond the pixel count
    dense_table, sparse_table = shape_features(labels), shape_features(sparse)
    assert np.array_equal(sparse_table["label"], dense_table["label"] * 10_000_000_019)
    for name, column in dense_table.items():
        if name != "label":
            np.testing.assert_array_equal(sparse_table[name], column, err_msg=name)


def test_when_objects_are_large_then_feret_and_hull_still_match_regionprops():
    from feature_images import ellipse

    shape = (200, 200)
    labels = np.zeros(shape, np.int32)
    labels[ellipse(shape, (100, 100), (90, 30), 0.7)] = 1
    labels[ellipse(shape, (100, 100), (40, 12), 2.0)] = 2  # cuts a slot into 1
    table = shape_features(labels)
    oracle = regionprops_table(labels, properties=["area_convex", "feret_diameter_max"])
    np.testing.assert_allclose(table["convex_area"], oracle["area_convex"])
    np.testing.assert_allclose(table["feret_max"], oracle["feret_diameter_max"])
    assert table["feret_max"][0] > 170
