"""OMERO plates through the real server process, the client and the magics.

The server is started through ``cli_with_double.py``, which injects the
double's gateway factory (built from the fixture repository's description)
into the real ``openhcs_nb.server.cli.main``: everything but the OMERO server
itself is real — the server process, its workers reading the binary
repository from disk, the write-back code and the client.
"""

from __future__ import annotations

import json

import pytest
from cli_with_double import ENV, FLAG
from omero_fixture import ALICE, BOB, EXPIRED

from openhcs_nb import connect, nuclei_count_pipeline
from openhcs_nb.client import (
    RemoteNotAuthorized,
    RemoteSessionInvalid,
    RemoteUnknownPlate,
)


@pytest.fixture(scope="module")
def omero_server(tmp_path_factory, omero_repo, plates_root):
    from server_process import ServerProcess

    root = omero_repo.parent
    server = ServerProcess(
        tmp_path_factory.mktemp("omero-server"),
        plates_root,
        extra=(
            "[omero]\n"
            "enabled = true\n"
            'host = "double"\n'
            f'data_dir = "{root}"\n'
            "retry_delay_s = 0.1\n"
        ),
        env=ENV,
        args=(FLAG, str(omero_repo)),
        module="cli_with_double",
    ).start()
    yield server
    server.kill()


def writes(omero_repo) -> list[dict]:
    log = omero_repo.parent / "writes.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_when_omero_plate_submitted_then_it_runs_from_disk_and_writes_back(
    omero_server, omero_repo
):
    before = len(writes(omero_repo))
    with connect(omero_server.address, omero_session=BOB) as conn:
        assert conn.server_info.omero_user == "bob"
        run = conn.submit(nuclei_count_pipeline(), "omero:101")
        table = run.result(timeout=120)
        assert (table.status == "done").all(), table
        assert run.error is None, run.error
    store = omero_server.results_root / run.id
    paths = json.loads((store / "pixel_paths.json").read_text())
    assert set(paths) == set(table.well)
    assert {p for sites in paths.values() for p in sites.values()} == {"original"}
    new = writes(omero_repo)[before:]
    tables = {w["name"]: w for w in new if w["kind"] == "table"}
    wells_table = tables["openhcs-nb wells"]
    assert wells_table["rows"] == len(table)
    assert ["WellColumn", "Well"] in wells_table["columns"]
    assert ["LongColumn", "count"] in wells_table["columns"]
    links = {
        (w["ns"], w["cls"]) for w in new if w["kind"] == "link" and w["plate"] == 101
    }
    assert ("openmicroscopy.org/omero/bulk_annotations", "FileAnnotationI") in links
    assert ("openhcs-nb/provenance", "MapAnnotationI") in links
    assert ("openhcs-nb/pipeline", "FileAnnotationI") in links
    rois = [w for w in new if w["kind"] == "roi"]
    assert len(rois) == int(table["count"].sum()), "one mask ROI per object"
    record = json.loads((store / "omero_writeback.json").read_text())
    assert record["user"] == "bob"  # written as the OMERO user of the session


def test_when_plate_has_romio_buffers_then_the_romio_path_is_recorded(omero_server):
    with connect(omero_server.address, omero_session=BOB) as conn:
        run = conn.submit(nuclei_count_pipeline(), "omero:103")
        table = run.result(timeout=120)
    store = omero_server.results_root / run.id
    paths = json.loads((store / "pixel_paths.json").read_text())
    used = {p for sites in paths.values() for p in sites.values()}
    assert "romio" in used, paths
    assert len(table) == len(paths) + int((table.status == "failed").sum())


def test_when_user_cannot_see_the_plate_then_refused_and_nothing_read(
    omero_server, omero_repo
):
    with connect(omero_server.address, omero_session=BOB) as conn:
        with pytest.raises(RemoteNotAuthorized) as info:
            conn.submit(nuclei_count_pipeline(), "omero:105")
    assert "105" in str(info.value)


def test_when_plate_does_not_exist_then_unknown_plate(omero_server):
    with connect(omero_server.address, omero_session=BOB) as conn:
        with pytest.raises(RemoteUnknownPlate, match="999"):
            conn.submit(nuclei_count_pipeline(), "omero:999")


def test_when_session_expired_then_connect_is_refused_clearly(omero_server):
    with pytest.raises(RemoteSessionInvalid):
        connect(omero_server.address, omero_session=EXPIRED)


def test_when_no_session_sent_then_omero_plates_say_how_to_log_in(omero_server):
    with connect(omero_server.address) as conn:
        with pytest.raises(RemoteSessionInvalid, match="omero_session"):
            conn.submit(nuclei_count_pipeline(), "omero:101")


def test_when_alice_runs_her_plate_then_bob_cannot_see_her_execution(omero_server):
    with connect(omero_server.address, omero_session=ALICE) as alice:
        run = alice.submit(nuclei_count_pipeline(), "omero:105")
        run.result(timeout=120)
    with connect(omero_server.address, omero_session=BOB) as bob:
        assert run.id not in {e.execution_id for e in bob.executions()}


def test_when_magic_runs_an_omero_plate_id_then_it_reads_from_disk(omero_server):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "openhcs_nb")
        magics = shell.magics_manager.registry["OpenHCSMagics"]
        magics.connection = connect(omero_server.address, omero_session=BOB)
        shell.run_line_magic("openhcs_run", "plate=101 viewer=none --out r")
        run = shell.user_ns["r"]
        assert run.plate == "omero:101"
        table = run.result(timeout=120)
        assert (table.status == "done").all()
        magics.connection.close()
    finally:
        InteractiveShell.clear_instance()


def test_when_writeback_is_retried_from_the_cli_then_results_go_back_again(
    omero_server, omero_repo
):
    import os
    import subprocess
    import sys

    with connect(omero_server.address, omero_session=BOB) as conn:
        run = conn.submit(nuclei_count_pipeline(), "omero:101", wells=["A01"])
        run.result(timeout=120)
    before = len(writes(omero_repo))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli_with_double",
            "writeback",
            run.id,
            "--config",
            str(omero_server.base / "server.toml"),
            FLAG,
            str(omero_repo),
        ],
        env={**os.environ, **ENV, "OMERO_SESSION_KEY": BOB},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert run.id in result.stdout
    again = writes(omero_repo)[before:]
    assert any(w["kind"] == "table" for w in again)
    record = json.loads(
        (omero_server.results_root / run.id / "omero_writeback.json").read_text()
    )
    assert record["state"] == "done", record
    assert record["user"] == "bob"
    assert record["errors"] == []
