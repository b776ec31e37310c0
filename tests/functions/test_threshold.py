"""threshold_otsu, threshold_li and threshold_manual."""

from __future__ import annotations

import numpy as np
import pytest
from fn_shapes import bimodal
from skimage import filters

from openhcs_nb.functions import threshold_li, threshold_manual, threshold_otsu
from openhcs_nb.functions._threshold import li_value, otsu_value


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_when_image_is_bimodal_then_otsu_finds_the_foreground(rng):
    image, truth = bimodal(rng, (64, 80), low=100.0, high=400.0, noise=10.0)
    mask = threshold_otsu(image[None])
    assert mask.dtype == bool
    assert mask.shape == (1, 64, 80)
    # Like scikit-image, the cut is the centre of the last background bin, so
    # the brightest background pixel may land above it.
    assert mask[0][truth].all()
    assert np.count_nonzero(mask[0] & ~truth) <= 1


def test_when_image_is_bimodal_then_li_finds_the_foreground(rng):
    image, truth = bimodal(rng, (64, 80), low=100.0, high=400.0, noise=10.0)
    np.testing.assert_array_equal(threshold_li(image[None])[0], truth)


@pytest.mark.parametrize("seed", range(4))
def test_when_compared_with_skimage_then_otsu_agrees_within_a_bin(seed):
    rng = np.random.default_rng(seed)
    image, _ = bimodal(rng, (96, 96), low=rng.uniform(0, 50), high=150.0, noise=25.0)
    image += rng.exponential(30.0, image.shape).astype(np.float32)
    bin_width = float(image.max() - image.min()) / 256
    assert otsu_value(image) == pytest.approx(
        filters.threshold_otsu(image), abs=bin_width
    )


@pytest.mark.parametrize("seed", range(4))
def test_when_compared_with_skimage_then_li_agrees_closely(seed):
    rng = np.random.default_rng(seed)
    image, _ = bimodal(rng, (96, 96), low=rng.uniform(0, 50), high=150.0, noise=25.0)
    image += rng.exponential(30.0, image.shape).astype(np.float32)
    span = float(image.max() - image.min())
    assert li_value(image) == pytest.approx(filters.threshold_li(image), abs=span / 500)


def test_when_image_is_uint16_then_thresholds_agree_with_skimage(rng):
    image, _ = bimodal(rng, (96, 96), low=1000.0, high=3000.0, noise=300.0)
    image16 = image.astype(np.uint16)
    span = float(image16.max() - image16.min())
    assert otsu_value(image16) == pytest.approx(
        filters.threshold_otsu(image16), abs=span / 256
    )
    assert li_value(image16) == pytest.approx(
        filters.threshold_li(image16), abs=span / 500
    )


def test_when_planes_differ_then_each_gets_its_own_threshold(rng):
    a, truth = bimodal(rng, (40, 40), low=0.0, high=10.0, noise=0.5)
    b, _ = bimodal(rng, (40, 40), low=1000.0, high=5000.0, noise=100.0)
    mask = threshold_otsu(np.stack([a, b]))
    for plane in mask:
        assert plane[truth].all()
        assert np.count_nonzero(plane & ~truth) <= 1


def test_when_plane_is_constant_then_nothing_is_foreground():
    stack = np.full((2, 10, 10), 5.0, np.float32)
    assert not threshold_otsu(stack).any()
    assert not threshold_li(stack).any()


def test_when_manual_value_given_then_mask_is_strictly_above_it():
    stack = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    mask = threshold_manual(stack, value=5.0)
    np.testing.assert_array_equal(mask.ravel(), np.arange(12) > 5)
