"""project_z and composite_channels."""

from __future__ import annotations

import numpy as np
import pytest

from openhcs_nb.functions import composite_channels, project_z


def _stack() -> np.ndarray:
    return np.array([[[1, 5], [3, 0]], [[4, 2], [3, 8]]], dtype=np.uint16)


def test_when_projected_by_max_then_one_plane_keeps_the_dtype():
    out = project_z(_stack())
    assert out.shape == (1, 2, 2)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[0], [[4, 5], [3, 8]])


def test_when_projected_by_mean_then_one_float32_plane_results():
    out = project_z(_stack(), method="mean")
    assert out.shape == (1, 2, 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [[2.5, 3.5], [3.0, 4.0]])


@pytest.mark.parametrize(("method", "expected"), [("mean", 0.5), ("max", 1.0)])
def test_when_channels_composited_then_each_is_scaled_before_combining(
    method, expected
):
    dim = np.array([[0, 10], [0, 10]], np.float32)
    bright = np.array([[5000, 0], [5000, 0]], np.float32)
    out = composite_channels(np.stack([dim, bright]), method=method)
    assert out.shape == (1, 2, 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], np.full((2, 2), expected))


def test_when_composite_percentiles_given_then_outliers_are_clipped():
    plane = np.zeros((10, 10), np.float32)
    plane[0, 0] = 1e6  # a hot pixel
    plane[5:, :] = 10.0
    out = composite_channels(plane[None], low=0.0, high=98.0)
    assert out[0, 9, 9] == 1.0
    assert out[0, 0, 0] == 1.0
