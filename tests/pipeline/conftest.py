"""A small, honest test catalogue: codegen and loading never run the functions."""

from __future__ import annotations

import pytest

from openhcs_nb.pipeline import Catalogue, Function, Param


def _same(stack, **_kwargs):
    return stack


def make_test_catalogue() -> Catalogue:
    """Functions covering every parameter type, bounds, choices and kinds."""
    return Catalogue(
        [
            Function(
                "gaussian_blur",
                "1",
                _same,
                "Smooth with a Gaussian kernel.",
                "filters",
                params=(Param("sigma", "float", 1.0, "kernel width", 0.0, 50.0),),
            ),
            Function(
                "threshold_otsu",
                "1",
                _same,
                "Otsu threshold.",
                "segmentation",
                output="mask",
            ),
            Function(
                "fill_holes",
                "1",
                _same,
                "Fill holes in a mask.",
                "morphology",
                input="mask",
                output="mask",
                params=(Param("max_size", "int", 0, "largest hole, 0 = all", 0),),
            ),
            Function(
                "label",
                "1",
                _same,
                "Connected components.",
                "segmentation",
                input="mask",
                output="labels",
                params=(
                    Param("connectivity", "choice", 1, "neighbourhood", choices=(1, 2)),
                ),
            ),
            Function(
                "measure_objects",
                "1",
                _same,
                "Per-object measurements.",
                "measure",
                input="labels",
                output="labels",
                side_outputs=("measurements",),
                params=(
                    Param("prefix", "str", "obj", "column prefix"),
                    Param("intensity", "bool", True, "measure intensities"),
                ),
            ),
            Function(
                "max_project",
                "1",
                _same,
                "Project a stack.",
                "projection",
                params=(
                    Param(
                        "method", "choice", "max", "how", choices=("max", "mean", "min")
                    ),
                ),
            ),
            Function(
                "normalize",
                "1",
                _same,
                "Percentile normalisation.",
                "filters",
                params=(
                    Param("low", "float", 1.0, "low percentile", 0.0, 100.0),
                    Param("high", "float", 99.0, "high percentile", 0.0, 100.0),
                    Param("clip", "bool", True, "clip to [0, 1]"),
                ),
            ),
            Function(
                "crop",
                "1",
                _same,
                "Crop to a centred square.",
                "geometry",
                params=(Param("size", "int", None, "side length (required)", 1),),
            ),
            Function(
                "rolling_ball_background_subtraction_with_a_long_name",
                "2",
                _same,
                "Long name to exercise line breaking.",
                "filters",
                params=(
                    Param(
                        "radius_of_the_rolling_ball_in_pixels", "int", 50, "radius", 1
                    ),
                    Param("light_background_instead_of_dark", "bool", False, "light"),
                    Param("shrink_factor_before_rolling", "float", 1.0, "speed", 1.0),
                ),
            ),
        ]
    )


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return make_test_catalogue()
