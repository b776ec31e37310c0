"""well_aggregates: NaN-aware summaries against direct NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from feature_images import irregular_labels, noisy_image

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._aggregate import well_aggregates
from openhcs_nb.functions._features_intensity import intensity_features
from openhcs_nb.functions._features_shape import shape_features


@pytest.fixture(scope="module")
def objects():
    rng = np.random.default_rng(12)
    labels = irregular_labels(rng)
    table = shape_features(labels) | intensity_features(
        labels, noisy_image(rng, labels)
    )
    return table


def test_when_features_default_then_every_numeric_column_is_summarised(objects):
    summary = well_aggregates(objects)
    assert summary["count"] == objects["label"].size
    assert "label_mean" not in summary
    for name, column in objects.items():
        if name == "label":
            continue
        finite = column[np.isfinite(column)]
        assert summary[f"{name}_mean"] == pytest.approx(finite.mean())
        assert summary[f"{name}_median"] == pytest.approx(np.median(finite))
        assert summary[f"{name}_std"] == pytest.approx(finite.std())


def test_when_values_are_nan_then_they_are_left_out(objects):
    # the one-pixel object has no form factor
    assert np.isnan(objects["form_factor"]).sum() == 1
    summary = well_aggregates(objects, features=["form_factor"])
    assert summary["form_factor_mean"] == pytest.approx(
        np.nanmean(objects["form_factor"])
    )
    assert list(summary) == [
        "count",
        "form_factor_mean",
        "form_factor_median",
        "form_factor_std",
    ]


def test_when_thresholds_given_then_fraction_positive_counts_above_them(objects):
    cut = float(np.median(objects["intensity_mean"]))
    summary = well_aggregates(
        objects, features=[], positive={"intensity_mean": cut, "form_factor": 0.5}
    )
    expected = np.mean(objects["intensity_mean"] > cut)
    assert summary["fraction_positive_intensity_mean"] == pytest.approx(expected)
    finite = objects["form_factor"][np.isfinite(objects["form_factor"])]
    assert summary["fraction_positive_form_factor"] == pytest.approx(
        np.mean(finite > 0.5)
    )


def test_when_table_is_empty_then_count_is_zero_and_stats_nan():
    summary = well_aggregates(
        {"label": np.zeros(0), "area": np.zeros(0)}, positive={"area": 1}
    )
    assert summary["count"] == 0
    assert np.isnan(summary["area_mean"])
    assert np.isnan(summary["fraction_positive_area"])


def test_when_column_is_missing_or_ragged_then_pipeline_error():
    with pytest.raises(PipelineError):
        well_aggregates({"area": np.ones(3)}, features=["perimeter"])
    with pytest.raises(PipelineError):
        well_aggregates({"area": np.ones(3), "perimeter": np.ones(2)})
