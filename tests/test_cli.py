"""The ``openhcs-nb`` command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from openhcs_nb import Pipeline, Step, nuclei_count_pipeline
from openhcs_nb.functions import gaussian_blur, label_objects, threshold_otsu
from openhcs_nb.plates.synthetic import (
    SyntheticPlateSpec,
    generate_plate,
    load_ground_truth,
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openhcs_nb.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_when_run_without_pipeline_then_the_cells_tables_are_written(
    small_plate_path, tmp_path
):
    out = tmp_path / "r"
    result = cli(
        "run",
        str(small_plate_path),
        "--workers",
        "0",
        "--out",
        str(out),
        "--wells",
        "A01",
        "A02",
    )
    assert result.returncode == 0, result.stderr
    truth = load_ground_truth(small_plate_path)
    wells = pd.read_parquet(out / "wells.parquet").set_index("well")
    objects = pd.read_parquet(out / "objects.parquet")
    fields = pd.read_parquet(out / "fields.parquet")
    assert list(wells.index) == ["A01", "A02"]
    per_set = objects.groupby(["well", "object_set"]).size().unstack()
    assert sorted(per_set.columns) == ["cells", "nuclei"]
    for well in ("A01", "A02"):
        assert wells.loc[well, "count"] == truth.count(well)
        assert per_set.loc[well, "nuclei"] == truth.count(well)
        assert wells.loc[well, "cells_count"] == per_set.loc[well, "cells"]
    cells = objects[objects.object_set == "cells"]
    assert cells["parent_nuclei"].notna().all()
    # one row per well, field and channel, with the quality verdict
    assert len(fields) == 2 * 2 * 2
    assert set(fields.channel) == {"DAPI", "GFP"}
    assert fields["qc_pass"].notna().all()
    assert "A02" in result.stdout and "cells_count" in result.stdout
    assert "results:" in result.stdout


def test_when_plate_has_one_channel_then_default_finds_nuclei_and_says_why(tmp_path):
    plate = tmp_path / "one.ome.zarr"
    spec = SyntheticPlateSpec(
        rows=1,
        columns=1,
        fields=1,
        channels=("DAPI",),
        shape=(128, 128),
        min_nuclei=5,
        max_nuclei=5,
        seed=3,
    )
    generate_plate(spec, plate)
    out = tmp_path / "r"
    result = cli("run", str(plate), "--workers", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and "second channel" in notes[0]
    assert "Traceback" not in result.stderr
    objects = pd.read_parquet(out / "objects.parquet")
    assert set(objects.object_set) == {"nuclei"}
    assert len(objects) == load_ground_truth(plate).count("A01")


def test_when_pipeline_file_given_then_it_is_used(small_plate_path, tmp_path):
    pipeline = Pipeline(
        "plain",
        (
            Step(
                name="cells",
                func={
                    1: [(gaussian_blur, {"sigma": 2.0}), threshold_otsu, label_objects]
                },
                group_by="channel",
            ),
        ),
    )
    code = tmp_path / "p.py"
    code.write_text(pipeline.to_code())
    out = tmp_path / "r"
    result = cli(
        "run",
        str(small_plate_path),
        "--pipeline",
        str(code),
        "--out",
        str(out),
        "--wells",
        "A01",
    )
    assert result.returncode == 0, result.stderr
    assert (out / "pipeline.py").read_text() == pipeline.to_code()
    assert list(pd.read_parquet(out / "wells.parquet").well) == ["A01"]
    assert pipeline != nuclei_count_pipeline()


def test_when_pipeline_file_is_hostile_then_exit_2_names_the_line(
    small_plate_path, tmp_path
):
    code = tmp_path / "bad.py"
    code.write_text("import os\n")
    result = cli(
        "run", str(small_plate_path), "--pipeline", str(code), "--out", str(tmp_path)
    )
    assert result.returncode == 2
    assert "line 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_when_plate_is_missing_then_exit_2_says_so(tmp_path):
    result = cli("run", str(tmp_path / "nope.ome.zarr"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
