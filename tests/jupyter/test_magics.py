"""The %openhcs_* magics in a real IPython shell against a real server."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from openhcs_nb import Execution, Pipeline, nuclei_count_pipeline, run_local

SMALL = "small.ome.zarr"


@pytest.fixture(scope="module")
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openhcs_nb")
    yield ip
    # The shell is a process-wide singleton: leave no shell behind for other
    # modules, which test behaviour outside IPython.
    InteractiveShell.clear_instance()


@pytest.fixture(scope="module")
def connected(shell, demo_server):
    conn = shell.run_line_magic("openhcs_connect", demo_server.address)
    yield shell
    conn.close()


def usage_error(shell, line: str, capsys) -> str:
    """Run a cell; assert it failed with a one-line UsageError and return it."""
    result = shell.run_cell(line)
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return str(result.error_in_exec)


def test_when_not_connected_then_run_says_so_in_one_line(shell, capsys):
    magics = shell.magics_manager.registry["OpenHCSMagics"]
    saved, magics.connection = magics.connection, None
    try:
        message = usage_error(shell, "%openhcs_run plate=demo", capsys)
        assert "not connected" in message
    finally:
        magics.connection = saved


def test_when_help_asked_then_options_are_documented(shell):
    doc = shell.find_line_magic("openhcs_run").__doc__
    assert "plate=" in doc and "viewer=" in doc and "--out" in doc
    assert "--demo" in shell.find_line_magic("openhcs_connect").__doc__


def test_when_pipeline_cell_runs_then_variable_holds_the_loaded_pipeline(connected):
    code = nuclei_count_pipeline().to_code()
    connected.run_cell_magic("openhcs_pipeline", "nuclei", code)
    assert connected.user_ns["nuclei"] == nuclei_count_pipeline()


def test_when_pipeline_cell_is_hostile_then_line_and_column_are_named(
    connected, capsys
):
    message = usage_error(
        connected, "%%openhcs_pipeline bad\nimport os\nos.system('x')\n", capsys
    )
    assert "line 1" in message and "column" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%openhcs_step q no_such_function", "unknown function 'no_such_function'"),
        ("%openhcs_step q gaussian_blur sigma=-1", "sigma"),
        ("%openhcs_step q gaussian_blur bogus=1", "bogus"),
        ("%openhcs_step q gaussian_blur sigma", "key=value"),
    ],
)
def test_when_step_is_wrong_then_one_line_names_the_problem(
    connected, capsys, line, expected
):
    assert expected in usage_error(connected, line, capsys)


def test_when_steps_added_cell_by_cell_then_pipeline_grows_and_replaces(connected):
    connected.user_ns.pop("cells", None)
    connected.run_line_magic("openhcs_step", "cells gaussian_blur sigma=2 --channel 0")
    connected.run_line_magic("openhcs_step", "cells measure_objects --vary channel")
    pipeline = connected.user_ns["cells"]
    assert isinstance(pipeline, Pipeline)
    assert [s.name for s in pipeline.steps] == ["gaussian_blur", "measure_objects"]
    connected.run_line_magic("openhcs_step", "cells gaussian_blur sigma=3 --channel 0")
    pipeline = connected.user_ns["cells"]
    assert len(pipeline.steps) == 2
    assert pipeline.steps[0].chains[0][1][0].kwargs_dict() == {"sigma": 3.0}
    connected.run_line_magic(
        "openhcs_step", "cells threshold_otsu --step gaussian_blur --append --channel 0"
    )
    chain = connected.user_ns["cells"].steps[0].chains[0][1]
    assert [c.name for c in chain] == ["gaussian_blur", "threshold_otsu"]


def test_when_run_then_it_returns_at_once_and_result_matches_local(
    connected, small_plate_path
):
    connected.run_cell_magic(
        "openhcs_pipeline", "nuclei", nuclei_count_pipeline().to_code()
    )
    out = connected.run_line_magic(
        "openhcs_run", f"plate={SMALL} pipeline=nuclei viewer=none --out run1"
    )
    assert out is None
    run = connected.user_ns["run1"]
    assert isinstance(run, Execution)
    remote = run.result(timeout=120)
    local = run_local(nuclei_count_pipeline(), small_plate_path, workers=0).wells
    pd.testing.assert_frame_equal(remote, local)


def test_when_wells_range_given_then_only_those_run(connected):
    connected.run_line_magic(
        "openhcs_run", f"plate={SMALL} viewer=none wells=A01:A02 --out run2"
    )
    table = connected.user_ns["run2"].result(timeout=120)
    assert list(table.well) == ["A01", "A02"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%openhcs_run plate=no_such_plate viewer=none", "unknown plate"),
        (f"%openhcs_run plate={SMALL} viewer=vr", "viewer must be"),
        (f"%openhcs_run plate={SMALL} colour=red", "unknown option"),
        (
            f"%openhcs_run plate={SMALL} pipeline=missing",
            "no pipeline called 'missing'",
        ),
        (f"%openhcs_run plate={SMALL} wells=Z01:Z02", "selects no well"),
        (f"%openhcs_preview plate={SMALL}", "which well"),
        ("%openhcs_attach ex-000000000000", "no execution"),
    ],
)
def test_when_run_options_are_wrong_then_one_line_error(
    connected, capsys, line, expected
):
    assert expected in usage_error(connected, line, capsys)


def test_when_preview_then_before_and_after_images_are_shown(connected):
    result = connected.run_line_magic(
        "openhcs_preview", f"plate={SMALL} well=B03 upto=1 pipeline=nuclei"
    )
    assert result.well == "B03"
    assert {"input/DAPI", "labels/nuclei"} <= set(result.images)


def test_when_status_cancel_attach_then_they_act_on_the_server(connected, capsys):
    connected.run_line_magic("openhcs_run", f"plate={SMALL} viewer=none --out run3")
    run = connected.user_ns["run3"]
    state = connected.run_line_magic("openhcs_cancel", "")
    assert state in {"cancelled", "done"}
    run.wait(60)
    connected.run_line_magic("openhcs_status", "")
    connected.run_line_magic("openhcs_attach", f"{run.id} --viewer none --out again")
    again = connected.user_ns["again"]
    assert again.id == run.id
    assert again.wait(60)
    assert again.state == run.state
