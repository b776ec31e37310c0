"""The ``openhcs-nb`` command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from openhcs_nb import Pipeline, Step, nuclei_count_pipeline
from openhcs_nb.functions import gaussian_blur, label_objects, threshold_otsu


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openhcs_nb.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_when_run_without_pipeline_then_default_tables_are_written(
    small_plate_path, tmp_path
):
    result = cli(
        "run", str(small_plate_path), "--workers", "1", "--out", str(tmp_path / "r")
    )
    assert result.returncode == 0, result.stderr
    wells = pd.read_parquet(tmp_path / "r" / "wells.parquet")
    objects = pd.read_parquet(tmp_path / "r" / "objects.parquet")
    assert len(wells) == 6
    assert wells["count"].sum() == len(objects)
    assert "A01" in result.stdout and "results:" in result.stdout


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
