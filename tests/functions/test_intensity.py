"""percentile_normalize, gaussian_blur and subtract_background."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions import (
    gaussian_blur,
    percentile_normalize,
    subtract_background,
)
from openhcs_nb.functions._intensity import plane_percentiles


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def test_when_float32_normalized_then_result_is_float32_in_unit_range(rng):
    stack = rng.normal(100.0, 20.0, (2, 40, 50)).astype(np.float32)
    out = percentile_normalize(stack)
    assert out.dtype == np.float32
    assert out.shape == stack.shape
    assert out.min() == 0.0
    assert out.max() == 1.0
    for plane, result in zip(stack, out, strict=True):
        lo, hi = np.percentile(plane, [1.0, 99.8]).astype(np.float32)
        expected = np.clip((plane - lo) / (hi - lo), 0, 1)
        np.testing.assert_allclose(result, expected, atol=1e-6)


def test_when_planes_differ_then_each_is_normalized_on_its_own(rng):
    stack = np.stack([rng.uniform(0, 10, (20, 20)), rng.uniform(1000, 5000, (20, 20))])
    out = percentile_normalize(stack.astype(np.float32), low=0.0, high=100.0)
    assert out[0].min() == 0.0 and out[0].max() == 1.0
    assert out[1].min() == 0.0 and out[1].max() == 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_when_integer_plane_then_histogram_percentiles_equal_numpy(rng, dtype):
    info = np.iinfo(dtype)
    plane = rng.integers(info.min, info.max, (37, 53), endpoint=True).astype(dtype)
    for low, high in [(1.0, 99.8), (0.0, 100.0), (33.3, 50.0)]:
        expected = np.percentile(plane, [low, high])
        np.testing.assert_allclose(plane_percentiles(plane, low, high), expected)


def test_when_plane_is_constant_then_normalization_gives_zeros():
    out = percentile_normalize(np.full((1, 8, 8), 7, np.uint16))
    assert out.dtype == np.float32
    assert not out.any()


def test_when_low_not_below_high_then_normalization_is_refused():
    with pytest.raises(PipelineError, match="low"):
        percentile_normalize(np.zeros((1, 4, 4), np.float32), low=50.0, high=50.0)


@pytest.mark.parametrize(("shape", "sigma"), [((2, 64, 48), 2.0), ((1, 7, 5), 3.0)])
def test_when_blurred_then_result_matches_scipy_per_plane(rng, shape, sigma):
    stack = rng.normal(0.0, 1.0, shape).astype(np.float32)
    out = gaussian_blur(stack, sigma=sigma)
    assert out.dtype == np.float32
    for plane, result in zip(stack, out, strict=True):
        expected = ndi.gaussian_filter(plane, sigma, mode="nearest")
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_when_blurred_then_planes_do_not_mix():
    stack = np.zeros((3, 21, 21), np.uint16)
    stack[1, 10, 10] = 1000
    out = gaussian_blur(stack, sigma=2.0)
    assert not out[0].any() and not out[2].any()
    assert out[1].sum() == pytest.approx(1000.0, rel=1e-4)
    assert out[1].argmax() == 10 * 21 + 10


def test_when_sigma_is_zero_then_blur_only_converts_to_float32():
    stack = np.arange(24, dtype=np.uint16).reshape(1, 4, 6)
    out = gaussian_blur(stack, sigma=0.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, stack)


def _spots_on_gradient(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    background = 200.0 + 2.0 * xx + 1.0 * yy
    spots = np.zeros(shape, bool)
    for y, x in [(30, 30), (30, 90), (90, 60), (100, 120)]:
        spots |= (yy - y) ** 2 + (xx - x) ** 2 <= 36
    return (background + 500.0 * spots).astype(np.uint16)[None], spots


@pytest.mark.parametrize("method", ["rolling_ball", "tophat"])
@pytest.mark.parametrize("shape", [(128, 160), (131, 157)])
def test_when_background_subtracted_then_gradient_goes_and_spots_stay(method, shape):
    stack, spots = _spots_on_gradient(shape)
    out = subtract_background(stack, radius=20, method=method)
    assert out.dtype == np.float32
    assert out.shape == stack.shape
    assert out.min() >= 0.0
    ring = ndi.binary_dilation(spots, iterations=3) ^ spots
    far = ~ndi.binary_dilation(spots, iterations=25)
    far[:20] = far[-20:] = far[:, :20] = far[:, -20:] = False  # openings' edge effect
    # The gradient spans ~450 grey levels; what is left of it is half a block's
    # rise (the block minimum stands for the block centre).
    assert out[0][far].max() < 8.0
    assert np.median(out[0][ring]) < 25.0
    assert np.median(out[0][spots]) == pytest.approx(500.0, abs=40.0)


def test_when_radius_is_small_then_background_runs_at_full_resolution():
    stack, spots = _spots_on_gradient((64, 64))
    out = subtract_background(stack, radius=3, method="tophat")
    # Spots (radius 6) are larger than the disc, so they count as background.
    assert np.median(out[0][spots]) < 50.0
