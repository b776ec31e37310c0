"""Issue 11, the client side: presets from a Connection, ``submit("preset:NAME")``
and ``%openhcs_run ... pipeline=preset:NAME``."""

from __future__ import annotations

import json

import pytest
from client_helpers import SMALL

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client.errors import (
    RemotePipelineCodeError,
    RemotePresetExists,
    RemoteUnknownPreset,
)
from openhcs_nb.results.store import pipeline_hash

CODE = nuclei_count_pipeline().to_code()


def _provenance(server, execution_id: str) -> tuple[str, dict]:
    folder = server.results_root / execution_id
    code = (folder / "pipeline.py").read_text()
    return code, json.loads((folder / "provenance.json").read_text())


def test_when_a_preset_is_saved_then_the_connection_lists_gets_and_deletes_it(conn):
    saved = conn.save_preset("client-nuclei", nuclei_count_pipeline(), description="d")
    assert saved.code == CODE and saved.owner == "local" and saved.group is None
    assert conn.preset("client-nuclei") == saved
    assert saved in conn.presets()
    with pytest.raises(RemotePresetExists, match="replace=True"):
        conn.save_preset("client-nuclei", CODE)
    assert conn.save_preset("client-nuclei", CODE, replace=True).description == ""
    conn.delete_preset("client-nuclei")
    with pytest.raises(RemoteUnknownPreset):
        conn.preset("client-nuclei")
    with pytest.raises(RemoteUnknownPreset):
        conn.delete_preset("client-nuclei")


def test_when_code_is_bad_then_save_raises_with_line_and_column(conn):
    with pytest.raises(RemotePipelineCodeError) as info:
        conn.save_preset("bad", "import os\n")
    assert info.value.line == 1 and info.value.col is not None


def test_when_submitting_preset_name_then_its_exact_code_runs_and_is_recorded(
    conn, demo_server
):
    # Code that is not what to_code() writes (comments, spacing): provenance
    # must hold these exact bytes, not a regenerated pipeline.
    code = f"# saved from the web\n{CODE}\n\n"
    conn.save_preset("exact", code, replace=True)
    run = conn.submit("preset:exact", SMALL, ["A01"])
    assert run.wait(120) and run.state == "done", run.error
    recorded, provenance = _provenance(demo_server, run.id)
    assert recorded == code
    assert provenance["pipeline_hash"] == pipeline_hash(code)
    assert conn.status(run.id).label == "preset:exact"
    with pytest.raises(RemoteUnknownPreset):
        conn.submit("preset:no-such-preset", SMALL, ["A01"])


def test_when_magic_runs_a_preset_then_the_run_uses_its_code(demo_server, conn):
    from IPython.core.interactiveshell import InteractiveShell

    conn.save_preset("magic-nuclei", CODE, replace=True)
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "openhcs_nb")
        magic_conn = shell.run_line_magic("openhcs_connect", demo_server.address)
        shell.run_line_magic(
            "openhcs_run",
            f"plate={SMALL} pipeline=preset:magic-nuclei viewer=none wells=A01 "
            "--out preset_run",
        )
        run = shell.user_ns["preset_run"]
        assert run.wait(120) and run.state == "done", run.error
        assert _provenance(demo_server, run.id)[0] == CODE
        result = shell.run_cell(
            f"%openhcs_run plate={SMALL} pipeline=preset:not-there viewer=none"
        )
        assert "not-there" in str(result.error_in_exec)
        magic_conn.close()
    finally:
        InteractiveShell.clear_instance()
