"""A ``--demo`` server keeps its own job history unless ``--results`` names one.

Each ``%openhcs_connect --demo`` starts a fresh server; it must not list the
runs of other notebooks. ``--results DIR`` (``./run demo``, admins) keeps a
history that the next server with the same folder sees again.
"""

from __future__ import annotations

import json
from pathlib import Path

from raw_client import RawClient

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.protocol import (
    Cancel,
    CancelReply,
    ExecutionsReply,
    ListExecutions,
    Submit,
    Submitted,
)
from openhcs_nb.server.local import LocalServer

DEMO = ["--demo", "--port", "0", "--log-level", "WARNING", "--workers", "1"]


def submit_one(server: LocalServer) -> str:
    """Queue one well on the demo plate, cancel it (it stays in the history)."""
    client = RawClient(server.address)
    try:
        code = nuclei_count_pipeline().to_code()
        msg = Submit(rid=1, pipeline_code=code, plate="demo", wells=["A01"])
        reply, _ = client.call(msg)
        assert isinstance(reply, Submitted), reply
        cancelled, _ = client.call(Cancel(rid=2, execution_id=reply.execution_id))
        assert isinstance(cancelled, CancelReply), cancelled
        return reply.execution_id
    finally:
        client.close()


def listed(server: LocalServer) -> list[str]:
    """The ids the server lists for its (only) local user."""
    client = RawClient(server.address)
    try:
        reply, _ = client.call(ListExecutions(rid=1))
        assert isinstance(reply, ExecutionsReply), reply
        return [info.execution_id for info in reply.executions]
    finally:
        client.close()


def results_root(server: LocalServer) -> Path:
    """The results folder the server reported in its ready file."""
    return Path(json.loads((server.workdir / "ready.json").read_text())["results"])


def test_when_a_second_demo_server_starts_then_it_lists_no_earlier_runs() -> None:
    with LocalServer(DEMO) as first:
        ran = submit_one(first)
        assert ran in listed(first)
        first_root = results_root(first)
        assert first_root.is_dir()
    assert not first_root.exists(), "a clean exit removes the demo's own history"
    with LocalServer(DEMO) as second:
        assert listed(second) == []
        assert results_root(second) != first_root


def test_when_demo_server_has_results_dir_then_history_survives(
    tmp_path: Path,
) -> None:
    args = [*DEMO, "--results", str(tmp_path / "results")]
    with LocalServer(args) as first:
        ran = submit_one(first)
    with LocalServer(args) as second:
        assert ran in listed(second)
        assert results_root(second) == tmp_path / "results"
