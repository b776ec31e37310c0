"""intensity_features: against regionprops and per-object NumPy loops."""

from __future__ import annotations

import numpy as np
import pytest
from feature_images import crowded_field, irregular_labels, noisy_image
from scipy import ndimage as ndi
from skimage.measure import regionprops, regionprops_table

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._features_intensity import intensity_features


@pytest.fixture(scope="module", params=[0, 1, "crowded"])
def field(request):
    if request.param == "crowded":
        return crowded_field(np.random.default_rng(7), 128, 30)
    rng = np.random.default_rng(request.param)
    labels = irregular_labels(rng)
    return labels, noisy_image(rng, labels)


def test_when_measured_then_statistics_match_regionprops(field):
    labels, image = field
    table = intensity_features(labels, image)
    oracle = regionprops_table(
        labels,
        image,
        properties=[
            "label",
            "intensity_mean",
            "intensity_median",
            "intensity_std",
            "intensity_min",
            "intensity_max",
        ],
    )
    assert np.array_equal(table["label"], oracle["label"])
    for name in ("mean", "median", "std", "min", "max"):
        np.testing.assert_allclose(
            table[f"intensity_{name}"], oracle[f"intensity_{name}"], rtol=1e-5
        )


def test_when_measured_then_integrated_edge_and_displacement_match_loops(field):
    labels, image = field
    table = intensity_features(labels, image)
    for row, region in enumerate(regionprops(labels, image)):
        mask = labels == region.label
        inner = ndi.binary_erosion(mask, np.ones((3, 3)), border_value=0)
        edge = mask & ~inner
        values = image[mask].astype(np.float64)
        assert table["intensity_integrated"][row] == pytest.approx(values.sum())
        assert table["intensity_edge_mean"][row] == pytest.approx(
            image[edge].astype(np.float64).mean()
        )
        ys, xs = np.nonzero(mask)
        weights = image[ys, xs].astype(np.float64)
        weighted = (np.sum(ys * weights), np.sum(xs * weights)) / weights.sum()
        expected = np.hypot(*(weighted - (ys.mean(), xs.mean())))
        assert table["mass_displacement"][row] == pytest.approx(expected, abs=1e-9)


def test_when_object_has_bright_side_then_mass_displacement_points_to_it():
    labels = np.zeros((20, 20), np.int32)
    labels[5:15, 5:15] = 1
    image = np.ones((20, 20))
    image[5:15, 10:15] = 3.0  # right half three times brighter
    table = intensity_features(labels, image)
    # weighted x = (7*1 + 12*3)/4 = 10.75 against a centroid of 9.5
    assert table["mass_displacement"][0] == pytest.approx(1.25)


def test_when_touching_objects_then_shared_border_counts_as_edge():
    labels = np.zeros((10, 10), np.int32)
    labels[2:8, 2:5] = 1
    labels[2:8, 5:8] = 2
    image = np.zeros((10, 10))
    image[:, 4] = 100.0  # the column of object 1 that touches object 2
    table = intensity_features(labels, image)
    # object 1 is 6x3 = 18 px; all but rows 3-6 of column 3 are edge: 14,
    # and the 6 pixels of column 4 among them are bright.
    expected = 100.0 * 6 / 14
    assert table["intensity_edge_mean"][0] == pytest.approx(expected)


def test_when_image_shape_differs_then_pipeline_error():
    with pytest.raises(PipelineError):
        intensity_features(np.zeros((4, 4), np.int32), np.zeros((4, 5)))
