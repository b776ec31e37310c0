"""The realistic synthetic style: truth masks, density, defects, determinism."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from openhcs_nb.errors import PlateError
from openhcs_nb.plates import open_plate
from openhcs_nb.plates._draw_cells import MAX_OVERLAP
from openhcs_nb.plates._realism import FULL_SCALE, channel_light
from openhcs_nb.plates.synthetic import (
    GroundTruth,
    SyntheticPlateSpec,
    generate_plate,
    load_ground_truth,
    load_truth_masks,
    plate_light,
    render_field_with_masks,
)

SPEC = SyntheticPlateSpec(
    rows=1,
    columns=3,
    fields=2,
    shape=(256, 256),
    min_nuclei=12,
    max_nuclei=150,
    radius=(6.0, 10.0),
    illumination=0.5,
    style="realistic",
    out_of_focus=0.3,
    debris=4.0,
    saturated=0.02,
    seed=3,
)


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    path = tmp_path_factory.mktemp("realistic") / "p.ome.zarr"
    return path, generate_plate(SPEC, path)


def _touching_share(nuclei: np.ndarray) -> float:
    """Share of nuclei whose label meets another label (8-neighbourhood)."""
    high = ndi.grey_dilation(nuclei, size=3)
    low = ndi.grey_erosion(np.where(nuclei > 0, nuclei, nuclei.max() + 1), size=3)
    inside = nuclei > 0
    meets = inside & (((high != nuclei) & (high > 0)) | (low != nuclei))
    count = int(nuclei.max())
    return len(np.unique(nuclei[meets])) / count if count else 0.0


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_when_generated_then_masks_match_truth_and_image(plate):
    path, truth = plate
    image = open_plate(path)
    for well in SPEC.wells:
        for site, field in enumerate(truth.fields[well]):
            nuclei, cells = load_truth_masks(path, well, site)
            assert nuclei.dtype == cells.dtype == np.int32
            ids = np.unique(nuclei[nuclei > 0])
            np.testing.assert_array_equal(ids, np.arange(1, field.count + 1))
            assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])  # i inside i
            assert set(np.unique(cells[cells > 0])) == set(ids.tolist())
            if field.out_of_focus:
                continue
            dapi = image.read_image(well, site, 0).astype(np.float32)
            flat = dapi / plate_light(SPEC).light[0]
            inside = np.median(flat[nuclei > 0])
            outside = np.median(flat[cells == 0])
            assert inside > 4 * outside  # nuclei are the bright DAPI pixels
            centres = np.array([(y, x) for y, x, _, _ in field.nuclei])
            at = nuclei[centres[:, 0].astype(int), centres[:, 1].astype(int)]
            assert np.mean(at == np.arange(1, field.count + 1)) > 0.98


def test_when_columns_rise_then_density_rises_to_confluence(plate):
    path, truth = plate
    touching = []
    covered = []
    for c in range(1, SPEC.columns + 1):
        nuclei, cells = load_truth_masks(path, f"A0{c}", 0)
        touching.append(_touching_share(nuclei))
        covered.append(float((cells > 0).mean()))
    counts = [truth.count(f"A0{c}") for c in (1, 2, 3)]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert covered == sorted(covered)
    assert touching[-1] > 0.5 > touching[0]
    assert covered[-1] > 0.75


def test_when_clumped_then_clumps_overlap_and_sizes_differ():
    light = plate_light(SPEC)
    _, truth, masks = render_field_with_masks(SPEC, 0, 1, 0, light)
    groups: dict[int, list[tuple[float, float, float]]] = {}
    for y, x, r, g in truth.nuclei:
        if g >= 0:
            groups.setdefault(g, []).append((y, x, r))
    assert sum(len(m) >= 3 for m in groups.values()) >= 3
    overlaps = []
    for members in groups.values():
        for i, (y1, x1, r1) in enumerate(members):
            for y2, x2, r2 in members[i + 1 :]:
                depth = r1 + r2 - np.hypot(y1 - y2, x1 - x2)
                assert depth <= MAX_OVERLAP * min(r1, r2) + 1e-6
                if depth > 0:
                    overlaps.append(depth / ((r1 + r2) / 2))
    assert min(overlaps) >= 0.09 and max(overlaps) > 0.25
    radii = [r for m in groups.values() for _, _, r in m]
    assert np.std(radii) > 0.5
    # a clump is one blob to a threshold: the truth has more nuclei than blobs
    _, blobs = ndi.label(masks["nuclei"] > 0)
    assert blobs < truth.count


def test_when_spec_is_the_same_then_bytes_are_identical(tmp_path):
    small = dataclasses.replace(SPEC, shape=(96, 96), max_nuclei=40, fields=1)
    a = generate_plate(small, tmp_path / "a.ome.zarr", workers=2)
    b = generate_plate(small, tmp_path / "b.ome.zarr", workers=1)
    assert a == b
    assert _digest(tmp_path / "a.ome.zarr") == _digest(tmp_path / "b.ome.zarr")
    masks_a = _digest(tmp_path / "a.ome.zarr.truth")
    assert masks_a == _digest(tmp_path / "b.ome.zarr.truth")
    assert sorted(masks_a) == ["A01.npz", "A02.npz", "A03.npz"]
    other = dataclasses.replace(small, seed=4)
    c = generate_plate(other, tmp_path / "c.ome.zarr")
    assert _digest(tmp_path / "c.ome.zarr.truth") != masks_a
    assert c.fields != a.fields


def test_when_field_is_out_of_focus_then_it_has_less_fine_detail(plate):
    path, truth = plate
    image = open_plate(path)

    def detail(well: str, site: int) -> float:
        dapi = image.read_image(well, site, 0).astype(np.float32)
        smooth = ndi.gaussian_filter(dapi, 1.0)  # above the pixel noise
        return float(np.mean(np.abs(ndi.laplace(smooth))))

    blurred = [
        (w, s)
        for w in SPEC.wells
        for s, f in enumerate(truth.fields[w])
        if f.out_of_focus
    ]
    sharp = [
        (w, s)
        for w in SPEC.wells
        for s, f in enumerate(truth.fields[w])
        if not f.out_of_focus
    ]
    assert blurred and sharp
    for well, site in blurred:
        twins = [detail(w, s) for w, s in sharp if w == well] or [
            detail(w, s) for w, s in sharp
        ]
        assert detail(well, site) < 0.7 * min(twins)


def test_when_nuclei_are_planted_bright_then_pixels_saturate(plate):
    path, truth = plate
    image = open_plate(path)
    listed = 0
    for well in SPEC.wells:
        for site, field in enumerate(truth.fields[well]):
            nuclei, _ = load_truth_masks(path, well, site)
            dapi = image.read_image(well, site, 0)
            clipped = dapi >= FULL_SCALE
            for label in field.saturated:
                listed += 1
                assert clipped[nuclei == label].any()
            assert dapi.max() <= FULL_SCALE  # 12-bit camera in uint16
    assert listed > 0


def test_when_debris_is_planted_then_it_is_listed_and_not_a_nucleus(plate):
    path, truth = plate
    debris = sum(f.debris for fs in truth.fields.values() for f in fs)
    assert debris > 0
    image = open_plate(path)
    with np.load(path.with_name(path.name + ".truth") / "A01.npz") as data:
        assert data["debris"].shape == (SPEC.fields, *SPEC.shape)
        for site, field in enumerate(truth.fields["A01"]):
            labels = data["debris"][site]
            nuclei = data["nuclei"][site]
            assert 0 < len(np.unique(labels[labels > 0])) <= field.debris
            dapi = image.read_image("A01", site, 0)
            bare = (labels > 0) & (nuclei == 0)
            empty = (labels == 0) & (data["cells"][site] == 0)
            assert np.median(dapi[bare]) > np.median(dapi[empty]) + 100


def test_when_channels_differ_then_illumination_differs_but_is_plate_wide():
    a, b = (channel_light((64, 64), 0.5, c) for c in (0, 1))
    assert a.min() < 0.6 and a.max() > 0.95  # strong vignetting
    assert not np.allclose(a, b)
    first = plate_light(SPEC).light
    again = plate_light(dataclasses.replace(SPEC, seed=99)).light
    np.testing.assert_array_equal(first, again)  # no field or seed dependence


def test_when_truth_is_saved_then_it_round_trips_and_masks_refuse_bad_sites(plate):
    path, truth = plate
    assert load_ground_truth(path) == truth
    assert truth.count("A3") == sum(f.count for f in truth.fields["A03"])
    with pytest.raises(PlateError, match="fields"):
        load_truth_masks(path, "A01", SPEC.fields)
    simple = generate_plate(
        dataclasses.replace(SPEC, style="simple", shape=(64, 64), max_nuclei=20),
        path.parent / "simple.ome.zarr",
    )
    assert simple.count("A01") > 0
    with pytest.raises(PlateError, match="no truth masks"):
        load_truth_masks(path.parent / "simple.ome.zarr", "A01", 0)


def test_when_imagexpress_then_masks_sit_inside_the_folder(tmp_path):
    small = dataclasses.replace(SPEC, shape=(64, 64), max_nuclei=20, fields=1)
    generate_plate(small, tmp_path / "ix", format="imagexpress")
    nuclei, cells = load_truth_masks(tmp_path / "ix", "A02", 0)
    assert nuclei.max() > 0 and cells.shape == (64, 64)
    assert (tmp_path / "ix" / "ground_truth_masks" / "A02.npz").is_file()


@pytest.mark.slow
def test_when_demo_spec_field_is_rendered_then_it_is_fast_and_confluent():
    from openhcs_nb.plates.demo import DEMO_SPEC

    optics = plate_light(DEMO_SPEC)
    start = time.process_time()  # CPU, not wall: other work may share the cores
    _, truth, masks = render_field_with_masks(DEMO_SPEC, 3, 5, 0, optics)
    elapsed = time.process_time() - start
    assert truth.count == DEMO_SPEC.max_nuclei
    assert _touching_share(masks["nuclei"]) > 0.5
    assert elapsed < 4.0  # about 1 s of CPU; the densest of the plate's 96 fields


def test_when_realistic_plate_is_ensured_then_masks_land_beside_it(tmp_path):
    from openhcs_nb.plates.demo import ensure_plate

    small = dataclasses.replace(SPEC, shape=(64, 64), max_nuclei=20, fields=1)
    target = tmp_path / "cache" / "r.ome.zarr"
    ensure_plate(small, target)
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "r.ome.zarr",
        "r.ome.zarr.truth",
        "r.ome.zarr.truth.json",
    ]
    nuclei, _ = load_truth_masks(target, "A03", 0)
    assert nuclei.max() == load_ground_truth(target).fields["A03"][0].count
