"""The %openhcs_* magics in a real IPython shell against a real server."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from openhcs_nb import (
    Execution,
    Pipeline,
    default_pipeline,
    nuclei_count_pipeline,
    run_local,
)
from openhcs_nb.jupyter._magic_args import measures, strip_comment

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
        (f"%openhcs_run plate={SMALL} wells=Z01:Z02", "rows A-B, columns 1-3"),
        (f"%openhcs_run plate={SMALL} wells=A01:Z99", "outside the plate"),
        (f"%openhcs_run plate={SMALL} wells=A01,C07", "rows A-B, columns 1-3"),
        (f"%openhcs_preview plate={SMALL}", "which well"),
        ("%openhcs_attach ex-000000000000", "no execution"),
    ],
)
def test_when_run_options_are_wrong_then_one_line_error(
    connected, capsys, line, expected
):
    assert expected in usage_error(connected, line, capsys)


def test_when_preview_then_images_are_shown_and_no_repr_echoes(connected):
    cell = connected.run_cell(
        f"%openhcs_preview plate={SMALL} well=B03 upto=1 pipeline=nuclei"
    )
    assert cell.success, cell.error_in_exec
    assert cell.result is None  # nothing for the displayhook to echo
    result = connected.user_ns["_openhcs_preview"]
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


def test_when_plate_is_unknown_then_the_message_says_so_once(connected, capsys):
    message = usage_error(connected, "%openhcs_run plate=x viewer=none", capsys)
    assert message.count("unknown plate") == 1, message
    assert "'x'" in message


def test_when_magics_end_in_a_comment_then_it_is_ignored(connected, demo_server):
    connected.run_cell_magic(
        "openhcs_pipeline", "nuclei", nuclei_count_pipeline().to_code()
    )
    conn = connected.run_line_magic(
        "openhcs_connect", f"{demo_server.address}   # the test server"
    )
    assert conn.address == demo_server.address
    cell = connected.run_cell(
        f"%openhcs_run plate={SMALL} pipeline=nuclei viewer=none wells=A01 "
        "--out commented  # one well, as a user writes it"
    )
    assert cell.success, cell.error_in_exec
    assert list(connected.user_ns["commented"].result(timeout=120).well) == ["A01"]


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("plate=demo  # all wells", "plate=demo"),
        ("# only a comment", ""),
        ("label='a # b'  # c", "label='a # b'"),
        ('label="x #1" well=B03', 'label="x #1" well=B03'),
        ("colour=a#b", "colour=a#b"),
        (r"name=\#1 x=1", r"name=\#1 x=1"),
    ],
)
def test_when_a_line_has_a_hash_then_only_a_comment_is_stripped(line, kept):
    assert strip_comment(line) == kept


def test_when_pipeline_measures_nothing_then_run_warns_in_one_line(connected, capsys):
    connected.user_ns.pop("blurred", None)
    connected.run_line_magic("openhcs_step", "blurred gaussian_blur sigma=1")
    capsys.readouterr()
    connected.run_line_magic(
        "openhcs_run", f"plate={SMALL} pipeline=blurred viewer=none wells=A01 --out b"
    )
    warned = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(warned) == 1 and "measures nothing" in warned[0], warned
    assert "measure_objects" in warned[0]
    table = connected.user_ns["b"].result(timeout=120)
    assert "count" not in table.columns  # what the warning is about
    connected.run_line_magic(
        "openhcs_run", f"plate={SMALL} pipeline=nuclei viewer=none wells=A01 --out m"
    )
    assert "measures nothing" not in capsys.readouterr().err
    assert "count" in connected.user_ns["m"].result(timeout=120).columns


def test_when_no_pipeline_is_named_then_the_default_cells_pipeline_runs(shell):
    magics = shell.magics_manager.registry["OpenHCSMagics"]
    saved, magics.pipeline_name = magics.pipeline_name, None
    try:
        chosen = magics._pipeline(None)
    finally:
        magics.pipeline_name = saved
    assert chosen == default_pipeline()
    assert chosen != nuclei_count_pipeline()
    assert measures(chosen)


@pytest.fixture
def headless(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's check")
def test_when_napari_has_no_display_then_nothing_is_submitted(
    connected, capsys, headless
):
    conn = connected.magics_manager.registry["OpenHCSMagics"].connection
    before = len(conn.executions())
    connected.user_ns.pop("napari_run", None)
    message = usage_error(
        connected,
        f"%openhcs_run plate={SMALL} pipeline=nuclei viewer=napari --out napari_run",
        capsys,
    )
    assert "display" in message and 'viewer="inline"' in message
    assert "\n" not in message
    assert "napari_run" not in connected.user_ns
    assert len(conn.executions()) == before


def test_when_napari_is_not_installed_then_the_error_names_the_extra(
    connected, capsys, monkeypatch
):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setitem(sys.modules, "napari", None)
    message = usage_error(
        connected, f"%openhcs_run plate={SMALL} pipeline=nuclei viewer=napari", capsys
    )
    assert "openhcs-nb[napari]" in message
