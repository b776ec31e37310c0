"""The blocked banded-matrix filters behind gaussian_blur and the background."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from openhcs_nb.functions import _background as bg
from openhcs_nb.functions._banded import (
    apply_cols,
    apply_rows,
    convolution_band,
    gaussian_weights,
    upsample_band,
)


@pytest.mark.parametrize(("n", "sigma"), [(1, 1.0), (9, 4.0), (70, 2.0), (203, 0.7)])
def test_when_band_applied_on_rows_then_it_equals_correlate1d(n, sigma):
    rng = np.random.default_rng(n)
    src = rng.normal(0, 1, (n, 5)).astype(np.float32)
    weights = gaussian_weights(sigma)
    out = apply_rows(convolution_band(n, weights), src, np.empty_like(src))
    expected = ndi.correlate1d(src, weights, axis=0, mode="nearest")
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("n_in", "factor", "n_out"), [(1, 3, 2), (7, 4, 27), (40, 5, 200)]
)
def test_when_upsampled_by_band_then_it_equals_linear_interpolation(
    n_in, factor, n_out
):
    rng = np.random.default_rng(factor)
    small = rng.normal(0, 1, (n_in, n_in)).astype(np.float32)
    band = upsample_band(n_out, n_in, factor)
    wide = apply_cols(band, small, np.empty((n_in, n_out), np.float32))
    full = apply_rows(band, wide, np.empty((n_out, n_out), np.float32))
    expected = bg.upsample_linear(small, (n_out, n_out), factor, np)
    np.testing.assert_allclose(full, expected, atol=1e-5)


def test_when_upsampling_then_block_centres_keep_their_values():
    small = np.arange(12, dtype=np.float32).reshape(3, 4)
    full = bg.upsample_linear(small, (9, 12), 3, np)
    np.testing.assert_array_equal(full[1::3, 1::3], small)
