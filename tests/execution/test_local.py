from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from bar_recorder import BarRecorder

from openhcs_nb import nuclei_count_pipeline, open_plate, run_local
from openhcs_nb.errors import PlateError
from openhcs_nb.plates.synthetic import load_ground_truth
from openhcs_nb.results.store import ResultsStore


@pytest.fixture(scope="module")
def two_worker_results(small_plate_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "two"
    return run_local(nuclei_count_pipeline(), small_plate_path, workers=2, out=out)


def test_when_default_pipeline_runs_then_counts_match_planted_truth(
    two_worker_results, small_plate_path
):
    truth = load_ground_truth(small_plate_path).counts()
    wells = two_worker_results.wells.set_index("well")
    assert set(wells.index) == set(truth)
    for well, planted in truth.items():
        found = wells.loc[well, "count"]
        assert abs(found - planted) <= max(1, 0.1 * planted), (well, found, planted)


def test_when_run_then_tables_have_expected_columns(two_worker_results):
    wells = two_worker_results.wells
    assert list(wells.columns[:5]) == ["well", "row", "column", "status", "count"]
    assert {"area_mean", "intensity_mean_DAPI", "intensity_mean_GFP"} <= set(wells)
    assert (wells.status == "done").all()
    objects = two_worker_results.objects
    assert {"well", "site", "label", "area", "intensity_mean_DAPI"} <= set(objects)
    per_well = objects.groupby("well").size()
    assert (per_well == wells.set_index("well")["count"]).all()


def test_when_run_with_one_or_two_workers_then_results_are_identical(
    two_worker_results, small_plate_path, tmp_path
):
    one = run_local(
        nuclei_count_pipeline(), small_plate_path, workers=1, out=tmp_path / "one"
    )
    inline = run_local(
        nuclei_count_pipeline(), small_plate_path, workers=0, out=tmp_path / "in"
    )
    pd.testing.assert_frame_equal(one.wells, two_worker_results.wells)
    pd.testing.assert_frame_equal(inline.wells, two_worker_results.wells)
    key = ["well", "site", "label"]
    pd.testing.assert_frame_equal(
        one.objects.sort_values(key).reset_index(drop=True),
        two_worker_results.objects.sort_values(key).reset_index(drop=True),
    )


def test_when_run_then_labels_plate_opens_with_ome_zarr_reader(two_worker_results):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    path = two_worker_results.zarr_path
    nodes = list(Reader(parse_url(str(path)))())
    assert nodes, "ome-zarr-py found nothing in the results plate"
    field = list(Reader(parse_url(str(path / "A" / "1" / "0")))())
    found_labels = [n for n in field if "image-label" in n.zarr.root_attrs]
    assert [n.zarr.basename() for n in found_labels] == ["nuclei"]
    root = zarr.open_group(path, mode="r")
    labels = np.asarray(root["A/1/0/labels/nuclei/0"])
    assert labels.shape == (1, 1, 1, 256, 256)
    found = len(np.unique(labels)) - 1
    site0 = two_worker_results.objects.query("well == 'A01' and site == 0")
    assert found == len(site0)


def test_when_pipeline_changes_no_image_then_no_raw_pixels_are_stored(
    two_worker_results, small_plate_path
):
    root = zarr.open_group(two_worker_results.zarr_path, mode="r")
    # The default pipeline only segments: every field image has zero channels.
    assert root["A/1/0/0"].shape == (1, 0, 1, 256, 256)
    ref = str(open_plate(small_plate_path).ref)
    assert root["A/1/0"].attrs["openhcs_nb"]["raw_pixels"] == ref
    assert two_worker_results.provenance["raw_pixels"] == {
        "stored": False,
        "plate": ref,
    }
    stored = sum(
        f.stat().st_size for f in two_worker_results.zarr_path.rglob("*") if f.is_file()
    )
    raw = 6 * 2 * 2 * 256 * 256 * 2  # wells x fields x channels x plane bytes
    assert stored < raw / 10, (stored, raw)


def test_when_field_is_read_back_then_raw_channels_come_from_the_plate(
    two_worker_results, small_plate_path
):
    plate = open_plate(small_plate_path)
    store = ResultsStore(two_worker_results.path, open_input=open_plate)
    field = store.read_field("B03", 1)
    assert set(field) == {"image/DAPI", "image/GFP", "labels/nuclei"}
    np.testing.assert_array_equal(field["image/GFP"], plate.read_image("B03", 1, 1))
    np.testing.assert_array_equal(field["image/DAPI"], plate.read_image("B03", 1, 0))
    n_labels = len(np.unique(field["labels/nuclei"])) - 1
    objects = two_worker_results.objects.query("well == 'B03' and site == 1")
    assert n_labels == len(objects)
    with pytest.raises(PlateError, match="input plate"):
        ResultsStore(two_worker_results.path).read_field("B03", 1)


def test_when_run_then_provenance_records_the_pipeline(two_worker_results):
    prov = two_worker_results.provenance
    code = (two_worker_results.path / "pipeline.py").read_text()
    assert code == nuclei_count_pipeline().to_code()
    assert prov["pipeline_name"] == "nuclei"
    assert len(prov["pipeline_hash"]) == 64


def test_when_one_well_is_unreadable_then_it_fails_and_the_rest_finish(
    small_plate_path, tmp_path
):
    broken = tmp_path / "broken.ome.zarr"
    shutil.copytree(small_plate_path, broken)
    for meta in ("zarr.json", ".zarray"):
        target = broken / "B" / "2" / "0" / "0" / meta
        if target.exists():
            target.unlink()
    results = run_local(
        nuclei_count_pipeline(), broken, workers=2, out=tmp_path / "out"
    )
    assert set(results.failed) == {"B02"}
    wells = results.wells.set_index("well")
    assert wells.loc["B02", "status"] == "failed"
    assert isinstance(wells.loc["B02", "error"], str)
    assert wells.loc["B02", "error"].strip()
    assert pd.isna(wells.loc["B02", "count"])
    assert (wells.drop(index="B02").status == "done").all()
    failures = (results.path / "failures.json").read_text()
    assert "Traceback" in failures


def test_when_wells_subset_given_then_only_those_run(small_plate_path, tmp_path):
    results = run_local(
        nuclei_count_pipeline(),
        small_plate_path,
        workers=0,
        out=tmp_path,
        wells=["A02"],
    )
    assert list(results.wells.well) == ["A02"]
    assert open_plate(small_plate_path).wells != ("A02",)


def test_when_out_omitted_then_a_fresh_directory_is_used(small_plate_path):
    results = run_local(
        nuclei_count_pipeline(), small_plate_path, workers=0, wells=["A01"]
    )
    assert Path(results.path).is_dir()
    assert (Path(results.path) / "wells.parquet").exists()


def test_when_run_on_a_dask_cluster_then_results_equal_the_process_pool(
    two_worker_results, small_plate_path, tmp_path
):
    pytest.importorskip("distributed")
    on_dask = run_local(
        nuclei_count_pipeline(),
        small_plate_path,
        workers=2,
        out=tmp_path / "dask",
        dask=True,
    )
    pd.testing.assert_frame_equal(on_dask.wells, two_worker_results.wells)
    assert len(on_dask.objects) == len(two_worker_results.objects)


def test_when_run_with_a_bar_factory_then_the_bar_reaches_the_well_count(
    small_plate_path, tmp_path
):
    recorder = BarRecorder()
    seen: list[str] = []
    results = run_local(
        nuclei_count_pipeline(),
        small_plate_path,
        workers=0,
        out=tmp_path / "r",
        wells=["A01", "B02", "A03"],
        on_well=lambda r: seen.append(r.well),
        progress=recorder,
    )
    (bar,) = recorder.bars
    assert bar.total == 3
    assert sum(bar.updates) == len(results.wells) == len(seen) == 3
    assert bar.description == open_plate(small_plate_path).name
    assert bar.closed
