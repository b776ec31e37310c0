from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np
import pytest
from bar_recorder import BarRecorder

from openhcs_nb import _progress
from openhcs_nb.plates import demo as demo_module
from openhcs_nb.plates import open_plate
from openhcs_nb.plates.demo import (
    DEMO_SPEC,
    cache_root,
    demo_ground_truth,
    demo_path,
    demo_plate,
    ensure_plate,
)
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, load_ground_truth

TINY = SyntheticPlateSpec(rows=1, columns=2, shape=(32, 32), min_nuclei=2, max_nuclei=3)


def test_demo_spec_is_the_documented_plate():
    assert len(DEMO_SPEC.wells) == 24
    assert (DEMO_SPEC.rows, DEMO_SPEC.columns, DEMO_SPEC.fields) == (4, 6, 4)
    assert DEMO_SPEC.channels == ("DAPI", "Cytoplasm")
    assert DEMO_SPEC.shape == (1024, 1024)
    assert DEMO_SPEC.dtype == "uint16"
    assert [DEMO_SPEC.nuclei_per_field(c) for c in (1, 6)] == [40, 900]
    assert DEMO_SPEC.touching_fraction > 0


def test_when_cache_dir_not_given_then_env_then_home_is_used(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENHCS_NB_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert demo_path().parent == tmp_path / "env"
    assert demo_path().name.startswith("demo-plate-v")
    assert cache_root(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("OPENHCS_NB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "openhcs-nb"


def test_when_plate_is_ensured_twice_then_it_is_generated_once(tmp_path):
    target = tmp_path / "cache" / "tiny.ome.zarr"
    assert ensure_plate(TINY, target) == target
    stamp = (target / ".zattrs").stat().st_mtime_ns
    ensure_plate(TINY, target)
    assert (target / ".zattrs").stat().st_mtime_ns == stamp
    assert load_ground_truth(target).spec == TINY
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "tiny.ome.zarr",
        "tiny.ome.zarr.truth.json",
    ]


def test_when_a_generation_was_interrupted_then_its_leftovers_are_not_used(tmp_path):
    target = tmp_path / "tiny.ome.zarr"
    half = tmp_path / f".{target.name}.tmp-1-dead"
    (half / target.name).mkdir(parents=True)  # a half-written plate
    old = time.time() - 7200
    os.utime(half, (old, old))
    ensure_plate(TINY, target)
    assert open_plate(target).wells == ("A01", "A02")
    assert not half.exists()  # stale temporary folder cleaned up


def test_when_plate_exists_without_truth_then_truth_is_restored(tmp_path):
    target = tmp_path / "tiny.ome.zarr"
    ensure_plate(TINY, target)
    first = load_ground_truth(target)
    (tmp_path / "tiny.ome.zarr.truth.json").unlink()
    ensure_plate(TINY, target)
    assert load_ground_truth(target) == first


def test_when_two_threads_race_then_both_get_one_complete_plate(tmp_path):
    target = tmp_path / "tiny.ome.zarr"
    results, errors = [], []

    def run() -> None:
        try:
            results.append(ensure_plate(TINY, target))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [target, target]
    plate = open_plate(target)
    assert plate.read_well("A02").data.shape == (1, 1, 2, 1, 32, 32)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.slow
def test_when_demo_plate_opened_then_it_matches_its_spec_and_truth(tmp_path):
    plate = demo_plate(tmp_path)
    truth = demo_ground_truth(tmp_path)
    assert plate.layout.wells == DEMO_SPEC.wells
    assert plate.channels == DEMO_SPEC.channels
    assert plate.layout.fields == 4
    assert truth.count("A01") == 4 * 40
    assert truth.count("D06") == 4 * 900
    assert plate.read_image("C04", 3, 1).shape == (1024, 1024)
    assert np.asarray(plate.read_image("A01", 0, 0)).max() > 1000


SIX = SyntheticPlateSpec(rows=2, columns=3, shape=(32, 32), min_nuclei=1, max_nuclei=2)


def test_when_demo_plate_is_generated_then_each_well_is_reported_once(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(demo_module, "DEMO_SPEC", SIX)
    recorder = BarRecorder()
    demo_plate(tmp_path, progress=recorder)
    (bar,) = recorder.bars
    assert bar.total == 6
    assert bar.updates == [1] * 6
    assert bar.closed
    assert bar.description == (
        f"generating the demo plate (6 wells, ~{demo_module.DEMO_MB} MB) in {tmp_path}"
    )
    demo_plate(tmp_path, progress=recorder)  # cached: nothing to report
    assert len(recorder.bars) == 1


def test_when_generation_is_unwatched_then_it_logs_every_well(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(_progress, "watched", lambda: False)
    caplog.set_level(logging.INFO, logger="openhcs_nb")
    ensure_plate(SIX, tmp_path / "six.ome.zarr")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"generating 'synthetic' (6 wells) in {tmp_path}: {n}/6 wells"
        for n in range(1, 7)
    ]
