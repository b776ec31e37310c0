"""colocalisation: against scipy.stats.pearsonr and skimage's coefficients."""

from __future__ import annotations

import numpy as np
import pytest
from feature_images import irregular_labels, noisy_image
from scipy import ndimage as ndi
from scipy.stats import pearsonr
from skimage.filters import threshold_otsu
from skimage.measure import (
    manders_coloc_coeff,
    manders_overlap_coeff,
    pearson_corr_coeff,
)

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._features_coloc import colocalisation, field_colocalisation


@pytest.fixture(scope="module")
def field():
    """Channel b follows a on some objects and is independent on others."""
    rng = np.random.default_rng(8)
    labels = irregular_labels(rng)
    texture = ndi.gaussian_filter(rng.normal(0, 1, labels.shape), 2) * 150
    a = noisy_image(rng, labels).astype(np.float64) + np.abs(texture)
    independent = noisy_image(rng, labels).astype(np.float64)
    follows = 0.7 * a + rng.normal(0, 6, a.shape)
    b = np.where(labels % 2 == 1, follows, independent)
    b[60:70, 10:40] += 300.0  # debris in channel b only
    return labels, a, np.clip(b, 0, None)


def test_when_thresholds_default_then_columns_match_skimage_per_object(field):
    labels, a, b = field
    table = colocalisation(labels, a, b)
    ta, tb = threshold_otsu(a), threshold_otsu(b)
    for row, label in enumerate(table["label"]):
        mask = labels == label
        if mask.sum() < 3:
            continue
        r, _ = pearsonr(a[mask], b[mask])
        assert table["pearson"][row] == pytest.approx(r, abs=1e-9)
        r2, _ = pearson_corr_coeff(a, b, mask)
        assert table["pearson"][row] == pytest.approx(r2, abs=1e-9)
        m1 = manders_coloc_coeff(a, b > tb, mask)
        m2 = manders_coloc_coeff(b, a > ta, mask)
        assert table["manders_m1"][row] == pytest.approx(m1, abs=1e-12)
        assert table["manders_m2"][row] == pytest.approx(m2, abs=1e-12)
        overlap = manders_overlap_coeff(a, b, mask)
        assert table["overlap"][row] == pytest.approx(overlap, rel=1e-9)


def test_when_b_follows_a_then_pearson_is_higher_than_for_independent(field):
    labels, a, b = field
    table = colocalisation(labels, a, b)
    big = np.bincount(labels.ravel())[table["label"]] > 30
    hit = np.isin(table["label"], np.unique(labels[60:70, 10:40]))
    big &= ~hit  # the debris in b breaks the correlation there, as it should
    assert table["pearson"][hit & (table["label"] % 2 == 1)].max() < 0.6
    odd = (table["label"] % 2 == 1) & big
    even = (table["label"] % 2 == 0) & big
    assert odd.any()
    assert even.any()
    assert table["pearson"][odd].min() > 0.6
    assert np.abs(table["pearson"][even]).max() < 0.4


def test_when_thresholds_given_then_manders_uses_them(field):
    labels, a, b = field
    table = colocalisation(labels, a, b, threshold_a=0.0, threshold_b=1e9)
    assert np.all(table["manders_m1"][np.isfinite(table["manders_m1"])] == 0.0)
    finite = np.isfinite(table["manders_m2"])
    np.testing.assert_allclose(table["manders_m2"][finite], 1.0)


def test_when_object_is_one_pixel_then_pearson_is_nan(field):
    labels, a, b = field
    table = colocalisation(labels, a, b)
    assert np.isnan(table["pearson"][table["label"] == 30][0])


def test_when_field_measured_with_mask_then_matches_skimage(field):
    labels, a, b = field
    mask = labels > 0
    out = field_colocalisation(a, b, mask)
    assert out["pearson"] == pytest.approx(pearsonr(a[mask], b[mask])[0])
    assert out["manders_m1"] == pytest.approx(
        manders_coloc_coeff(a, b > threshold_otsu(b), mask)
    )
    assert out["overlap"] == pytest.approx(manders_overlap_coeff(a, b, mask))
    whole = field_colocalisation(a, b)
    assert whole["pearson"] == pytest.approx(pearsonr(a.ravel(), b.ravel())[0])


def test_when_channels_differ_in_shape_then_pipeline_error():
    with pytest.raises(PipelineError):
        colocalisation(np.ones((4, 4), np.int32), np.ones((4, 4)), np.ones((5, 4)))
