from __future__ import annotations

import hashlib
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from openhcs_nb.errors import PlateError
from openhcs_nb.plates import open_plate
from openhcs_nb.plates._draw import illumination
from openhcs_nb.plates.synthetic import (
    GroundTruth,
    SyntheticPlateSpec,
    generate_plate,
    load_ground_truth,
    render_field,
)

SPEC = SyntheticPlateSpec(
    rows=2, columns=3, fields=2, shape=(128, 128), min_nuclei=4, max_nuclei=12
)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("fmt", "version"),
    [("ome-zarr", "0.4"), ("ome-zarr", "0.5"), ("imagexpress", "0.4")],
)
def test_when_same_seed_then_identical_bytes(tmp_path, fmt, version):
    a = generate_plate(SPEC, tmp_path / "a", fmt, version, workers=2)
    b = generate_plate(SPEC, tmp_path / "b", fmt, version, workers=1)
    assert a == b
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert len(_digest(tmp_path / "a")) > 6


def test_when_seed_differs_then_pixels_and_truth_differ(tmp_path):
    light = illumination(SPEC.shape, SPEC.illumination)
    other = SyntheticPlateSpec(**{**SPEC.__dict__, "seed": 1})
    img_a, truth_a = render_field(SPEC, 0, 2, 0, light)
    img_b, truth_b = render_field(other, 0, 2, 0, light)
    assert not np.array_equal(img_a, img_b)
    assert truth_a.nuclei != truth_b.nuclei


def test_when_generated_then_reader_returns_the_rendered_fields(tmp_path):
    generate_plate(SPEC, tmp_path / "p.zarr", ome_zarr_version="0.5")
    plate = open_plate(tmp_path / "p.zarr")
    light = illumination(SPEC.shape, SPEC.illumination)
    expected, _ = render_field(SPEC, 1, 2, 1, light)  # B03, field 1
    np.testing.assert_array_equal(plate.read_well("B03").data[1], expected)
    assert plate.channels == SPEC.channels
    assert plate.name == SPEC.name


def test_when_generated_then_planted_counts_follow_the_column_ramp(tmp_path):
    spec = SyntheticPlateSpec(
        rows=1, columns=4, fields=2, shape=(256, 256), min_nuclei=5, max_nuclei=20
    )
    truth = generate_plate(spec, tmp_path / "p.zarr")
    per_field = [[f.count for f in truth.fields[f"A0{c}"]] for c in range(1, 5)]
    assert per_field == [[5, 5], [10, 10], [15, 15], [20, 20]]
    assert truth.counts() == {"A01": 10, "A02": 20, "A03": 30, "A04": 40}
    assert truth.count("a4") == 40
    for fields in truth.fields.values():
        for f in fields:
            assert f.count == len(f.nuclei)
            assert f.touching_pairs == len({n[3] for n in f.nuclei if n[3] >= 0})


def test_when_field_is_too_small_then_truth_records_what_fit(tmp_path):
    spec = SyntheticPlateSpec(
        rows=1, columns=1, shape=(32, 32), min_nuclei=50, max_nuclei=50
    )
    truth = generate_plate(spec, tmp_path / "p.zarr")
    field = truth.fields["A01"][0]
    assert 0 < field.count < 50
    assert field.count == len(field.nuclei)


def test_when_planted_then_singles_keep_apart_and_pairs_touch():
    spec = SyntheticPlateSpec(
        shape=(256, 256), min_nuclei=30, max_nuclei=30, touching_fraction=0.4
    )
    _, truth = render_field(spec, 0, 0, 0, illumination(spec.shape, 0.0))
    assert truth.touching_pairs >= 4
    for (y1, x1, r1, p1), (y2, x2, r2, p2) in combinations(truth.nuclei, 2):
        dist = np.hypot(y1 - y2, x1 - x2)
        if p1 >= 0 and p1 == p2:
            assert 1.59 <= dist / ((r1 + r2) / 2) <= 1.81
        else:
            assert dist > r1 + r2


def test_when_thresholded_then_objects_are_nuclei_minus_touching_pairs():
    spec = SyntheticPlateSpec(
        shape=(256, 256), min_nuclei=25, max_nuclei=25, touching_fraction=0.3, noise=10
    )
    light = illumination(spec.shape, spec.illumination)
    image, truth = render_field(spec, 0, 0, 0, light)
    nuclei = ndi.gaussian_filter(image[0, 0, 0].astype(np.float32), 1.0)
    _, n_objects = ndi.label(nuclei > 600)
    assert n_objects == truth.count - truth.touching_pairs


def test_when_cytoplasm_channel_read_then_mean_rises_across_columns(tmp_path):
    generate_plate(SPEC, tmp_path / "p", format="imagexpress")
    plate = open_plate(tmp_path / "p")
    means = [plate.read_well(f"A0{c}").data[:, :, 1].mean() for c in (1, 2, 3)]
    assert means[0] < means[1] < means[2]
    truth = load_ground_truth(tmp_path / "p")
    assert [truth.levels[f"A0{c}"][1] for c in (1, 2, 3)] == sorted(
        truth.levels[f"A0{c}"][1] for c in (1, 2, 3)
    )


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_when_dtype_is_not_uint16_then_plate_has_that_dtype(tmp_path, dtype):
    spec = SyntheticPlateSpec(rows=1, columns=1, shape=(32, 32), dtype=dtype)
    generate_plate(spec, tmp_path / "p.zarr")
    assert open_plate(tmp_path / "p.zarr").read_image("A01", 0, 0).dtype == dtype


def test_when_z_and_t_asked_then_planes_differ_by_focus_and_noise(tmp_path):
    spec = SyntheticPlateSpec(rows=1, columns=1, shape=(64, 64), z=3, t=2, min_nuclei=3)
    generate_plate(spec, tmp_path / "p.zarr", ome_zarr_version="0.5")
    plate = open_plate(tmp_path / "p.zarr")
    assert (plate.layout.z, plate.layout.t) == (3, 2)
    in_focus, defocused = (
        plate.read_image("A01", 0, 0, z=1),
        plate.read_image("A01", 0, 0, z=0),
    )
    assert in_focus.max() > defocused.max()
    assert not np.array_equal(
        plate.read_image("A01", 0, 0, 1, 0), plate.read_image("A01", 0, 0, 1, 1)
    )


def test_when_truth_saved_then_it_loads_equal_for_both_formats(tmp_path):
    a = generate_plate(SPEC, tmp_path / "p.ome.zarr")
    b = generate_plate(SPEC, tmp_path / "ix", format="imagexpress")
    assert (tmp_path / "p.ome.zarr.truth.json").is_file()
    assert (tmp_path / "ix" / "ground_truth.json").is_file()
    assert load_ground_truth(tmp_path / "p.ome.zarr") == a
    assert load_ground_truth(tmp_path / "ix") == b
    assert GroundTruth.from_json(a.to_json()) == a
    with pytest.raises(PlateError, match="no ground truth"):
        load_ground_truth(tmp_path / "elsewhere")
    with pytest.raises(PlateError, match="not readable ground truth"):
        GroundTruth.from_json('{"version": 99}')


def test_when_ome_zarr_py_reads_generated_plates_then_it_sees_the_plate(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Plate as ReaderPlate
    from ome_zarr.reader import Reader

    for version in ("0.4", "0.5"):
        path = tmp_path / f"p{version}.zarr"
        generate_plate(SPEC, path, ome_zarr_version=version)
        node = next(iter(Reader(parse_url(str(path)))()))
        assert any(isinstance(spec, ReaderPlate) for spec in node.specs)
        assert node.metadata["channel_names"] == list(SPEC.channels)


def test_when_path_exists_then_generation_refuses(tmp_path):
    (tmp_path / "p").mkdir()
    with pytest.raises(FileExistsError):
        generate_plate(SPEC, tmp_path / "p")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rows": 0}, "rows"),
        ({"channels": ("a", "a")}, "channels"),
        ({"dtype": "int64"}, "dtype"),
        ({"min_nuclei": 9, "max_nuclei": 3}, "min_nuclei"),
        ({"radius": (5.0, 2.0)}, "radius"),
        ({"touching_fraction": 1.5}, "touching_fraction"),
    ],
)
def test_when_spec_is_invalid_then_value_error_names_it(change, match):
    with pytest.raises(ValueError, match=match):
        SyntheticPlateSpec(**change)


def test_when_format_is_unknown_then_value_error(tmp_path):
    with pytest.raises(ValueError, match="format"):
        generate_plate(SPEC, tmp_path / "p", format="tiff-stack")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ome_zarr_version"):
        generate_plate(SPEC, tmp_path / "q", ome_zarr_version="0.3")  # type: ignore[arg-type]


def test_when_generated_then_each_well_is_announced_once(tmp_path):
    announced: list[str] = []
    generate_plate(SPEC, tmp_path / "p.zarr", workers=2, on_well=announced.append)
    assert sorted(announced) == sorted(SPEC.wells)
    assert len(announced) == len(SPEC.wells)
