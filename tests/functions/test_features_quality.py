"""image_quality, flag_field and flag_blurred_fields."""

from __future__ import annotations

import numpy as np
import pytest
from feature_images import irregular_labels, noisy_image
from scipy import ndimage as ndi

from openhcs_nb.errors import PipelineError
from openhcs_nb.functions._features_quality import (
    DETAIL_SIGMA,
    PERCENTILES,
    flag_field,
    image_quality,
    power_log_log_slope,
)
from openhcs_nb.functions._quality import flag_blurred_fields


@pytest.fixture(scope="module")
def sharp():
    rng = np.random.default_rng(11)
    labels = np.tile(irregular_labels(rng), (2, 2))
    image = noisy_image(rng, labels) + rng.poisson(5.0, labels.shape)
    return image.astype(np.float64)


def test_when_field_is_blurred_then_focus_drops_and_slope_steepens(sharp):
    blurred = ndi.gaussian_filter(sharp, 2.0)
    q_sharp, q_blur = image_quality(sharp), image_quality(blurred)
    assert q_blur["focus_score"] < q_sharp["focus_score"]
    assert q_blur["local_focus_mean"] < q_sharp["local_focus_mean"]
    assert q_blur["power_log_log_slope"] < q_sharp["power_log_log_slope"] - 0.5
    slope = q_blur["power_log_log_slope"] - 0.2
    assert not flag_field(q_sharp, min_slope=slope, max_saturated=0.01)
    assert flag_field(q_blur, min_slope=slope + 0.4, max_saturated=0.01)


def test_when_measured_then_focus_and_percentiles_follow_definitions(sharp):
    q = image_quality(sharp, tile=48)
    assert q["focus_score"] == pytest.approx(sharp.var() / sharp.mean())
    tiles = [
        sharp[y : y + 48, x : x + 48]
        for y in (0, 48, 96, 144)
        for x in (0, 48, 96, 144)
    ]
    scores = [t.var() / t.mean() for t in tiles]
    assert q["local_focus_mean"] == pytest.approx(np.mean(scores))
    assert q["local_focus_min"] == pytest.approx(np.min(scores))
    for p in PERCENTILES:
        assert q[f"intensity_p{p}"] == pytest.approx(np.percentile(sharp, p))


def test_when_spectrum_is_a_power_law_then_slope_recovers_its_exponent():
    rng = np.random.default_rng(2)
    size = 256
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    amplitude = radius ** (-1.5)  # power ~ f^-3
    phases = np.exp(2j * np.pi * rng.uniform(size=(size, size)))
    field = np.real(np.fft.ifft2(amplitude * phases))
    assert power_log_log_slope(field) == pytest.approx(-3.0, abs=0.15)


def test_when_region_is_clipped_then_saturated_fraction_is_exact(sharp):
    raw = np.clip(sharp * 100, 0, 60000).astype(np.uint16)
    raw[10:30, 50:90] = 65535  # 800 clipped pixels
    assert raw.max() == 65535
    q = image_quality(raw)
    assert q["saturated_fraction"] == 800 / raw.size
    assert flag_field(q, min_slope=-10.0, max_saturated=0.01)
    assert not flag_field(q, min_slope=-10.0, max_saturated=0.05)
    floats = raw.astype(np.float32) / 65535
    assert (
        image_quality(floats, saturation_value=1.0)["saturated_fraction"]
        == 800 / raw.size
    )


def test_when_float_field_has_no_saturation_value_then_its_maximum_counts():
    image = np.linspace(0, 1, 100).reshape(10, 10)
    image[0, :3] = 1.0
    assert image_quality(image)["saturated_fraction"] == pytest.approx(0.04)


def test_when_field_is_constant_then_slope_is_nan_and_flagged():
    q = image_quality(np.full((32, 32), 7.0))
    assert np.isnan(q["power_log_log_slope"])
    assert q["focus_score"] == 0.0
    assert flag_field(q, min_slope=-5.0, max_saturated=1.0)


def test_when_image_is_not_2d_then_pipeline_error():
    with pytest.raises(PipelineError):
        image_quality(np.zeros((2, 4, 4)))


def nuclei_field(rng: np.random.Generator, count: int, blur: float) -> np.ndarray:
    """A 256² field of ``count`` textured discs on a noisy background."""
    yy, xx = np.mgrid[:256, :256]
    image = np.zeros((256, 256))
    for y, x, r in zip(
        rng.uniform(0, 256, count),
        rng.uniform(0, 256, count),
        rng.uniform(6, 11, count),
        strict=True,
    ):
        inside = np.hypot(yy - y, xx - x) <= r
        image[inside] = rng.uniform(300, 900) * rng.uniform(0.7, 1.3, inside.sum())
    image = ndi.gaussian_filter(image, 1.0 + blur)
    return image + 100 + rng.normal(0, 10, image.shape)


def well_table(fields: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The fields table flag_blurred_fields gets for one channel of a well."""
    rows = [image_quality(f) for f in fields]
    table = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    table["channel"] = np.array(["DAPI"] * len(rows), dtype=object)
    table["qc_pass"] = np.ones(len(rows), dtype=bool)
    return table


def test_when_a_sharp_field_holds_few_nuclei_then_it_is_not_flagged_blurred():
    """The demo's C01 case: a sparse sibling is sharp, just emptier."""
    rng = np.random.default_rng(4)
    fields = [nuclei_field(rng, 120, 0.0) for _ in range(3)]
    fields.append(nuclei_field(rng, 12, 0.0))
    flagged = flag_blurred_fields(well_table(fields))
    assert flagged["qc_pass"].all(), flagged["focus_ratio"]


def test_when_a_dense_field_is_blurred_then_it_alone_is_flagged():
    rng = np.random.default_rng(5)
    fields = [nuclei_field(rng, 40, 0.0) for _ in range(3)]
    fields.append(nuclei_field(rng, 160, 2.5))  # denser, yet blurred
    flagged = flag_blurred_fields(well_table(fields))
    assert list(flagged["qc_pass"]) == [True, True, True, False]


def test_when_detail_fraction_is_measured_then_it_follows_its_definition(sharp):
    q = image_quality(sharp)
    residual = sharp - ndi.gaussian_filter(sharp, DETAIL_SIGMA, mode="nearest")
    assert q["detail_fraction"] == pytest.approx(residual.var() / sharp.var())
    assert np.isnan(image_quality(np.full((32, 32), 7.0))["detail_fraction"])


@pytest.fixture(scope="module")
def demo_fields() -> tuple[dict[str, list[np.ndarray]], dict[str, list[bool]]]:
    """Raw fields of the cached demo plate's wells with a defocused field, plus
    one sparse well (C01), and the truth's in-focus flags for each field."""
    from openhcs_nb.plates.demo import demo_ground_truth, demo_path, demo_plate

    if not demo_path().exists():
        pytest.skip("the demo plate is not cached (openhcs-nb demo makes it)")
    plate, truth = demo_plate(), demo_ground_truth()
    in_focus = {
        well: [not f.out_of_focus for f in fields]
        for well, fields in truth.fields.items()
    }
    wells = sorted({"C01"} | {w for w, ok in in_focus.items() if not all(ok)})
    fields = {
        f"{well}/{c}": [plate.read_image(well, s, c) for s in range(4)]
        for well in wells
        for c in (0, 1)
    }
    return fields, in_focus


def test_when_the_demo_plate_is_checked_then_only_its_defocused_fields_fail(
    demo_fields,
):
    """The planted out-of-focus fields fail in both channels; sparse C01 passes."""
    fields_by_key, in_focus = demo_fields
    assert any(not all(ok) for ok in in_focus.values())  # the plate plants some
    for key, fields in fields_by_key.items():
        passed = list(flag_blurred_fields(well_table(fields))["qc_pass"])
        assert passed == in_focus[key.split("/")[0]], key
