"""Retention: old runs go, active runs and unwritten OMERO results never do.

Units plan prunes over a real job store and real result folders; the CLI
tests run ``openhcs-server prune`` and ``status`` as an admin would, one of
them beside a real server whose run is still going.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from client_helpers import slow_pipeline

import openhcs_nb as hcs
from openhcs_nb.server._config_ops import RetentionSection
from openhcs_nb.server.jobs import ExecutionTrigger, JobStore
from openhcs_nb.server.log_format import JsonLines
from openhcs_nb.server.retention import apply_prune, plan_prune

DAY = 86400.0


def _run(store: JobStore, root: Path, plate: str, state: str, size: int) -> str:
    record = store.create_execution("alice", plate, "code", ["A01"], {})
    folder = root / record.id
    folder.mkdir(parents=True)
    (folder / "wells.parquet").write_bytes(b"x" * size)
    if state == "queued":
        return record.id
    store.set_execution_state(record.id, ExecutionTrigger.START)
    if state == "running":
        return record.id
    if state == "interrupted":
        store.set_execution_state(record.id, ExecutionTrigger.INTERRUPT)
        return record.id
    if state == "cancelled":
        store.cancel(record.id)
        return record.id
    store.record_well_started(record.id, "A01")
    from openhcs_nb.protocol import WellDone
    from openhcs_nb.server._events import draft

    store.record_well_done(
        record.id, "A01", b"", draft(WellDone, record.id, well="A01")
    )
    store.set_execution_state(record.id, ExecutionTrigger.FINISH)
    return record.id


def _store(tmp_path: Path):
    root = tmp_path / "results"
    root.mkdir()
    store = JobStore(root / "jobs.sqlite3")
    runs = {
        "done": _run(store, root, "/plates/a", "finished", 1000),
        "cancelled": _run(store, root, "/plates/a", "cancelled", 2000),
        "queued": _run(store, root, "/plates/a", "queued", 10),
        "running": _run(store, root, "/plates/a", "running", 10),
        "interrupted": _run(store, root, "/plates/a", "interrupted", 10),
        "omero_unwritten": _run(store, root, "omero:3", "finished", 3000),
        "omero_written": _run(store, root, "omero:4", "finished", 4000),
    }
    status = root / runs["omero_written"] / "omero_writeback.json"
    status.write_text(json.dumps({"state": "done"}))
    failed = root / runs["omero_unwritten"] / "omero_writeback.json"
    failed.write_text(json.dumps({"state": "failed", "errors": ["session ended"]}))
    return store, root, runs


def test_age_rule_keeps_active_runs_and_unwritten_omero_results(tmp_path):
    store, root, runs = _store(tmp_path)
    policy = RetentionSection(max_age_days=1)
    assert plan_prune(store, root, policy).remove == ()  # all are young
    plan = plan_prune(store, root, policy, now=time.time() + 2 * DAY)
    gone = {item.execution_id for item in plan.remove}
    assert gone == {runs["done"], runs["cancelled"], runs["omero_written"]}
    assert plan.kept_for_writeback == (runs["omero_unwritten"],)
    removed = apply_prune(store, root, plan.remove)
    assert {i.execution_id for i in removed} == gone
    for name, execution_id in runs.items():
        kept = execution_id not in gone
        assert (store.get_execution(execution_id) is not None) == kept, name
        assert (root / execution_id).exists() == kept, name
    assert store.events_since(runs["done"], 0) == []
    store.close()


def test_size_rule_removes_oldest_first_until_under_the_limit(tmp_path):
    store, root, runs = _store(tmp_path)
    total = plan_prune(store, root, RetentionSection()).total_bytes
    limit_gib = (total - 1500) / 1024**3  # must free 1500 bytes
    plan = plan_prune(store, root, RetentionSection(max_total_gib=limit_gib))
    # oldest finished first: "done" (1000 B) is not enough, "cancelled" follows
    assert [i.execution_id for i in plan.remove] == [runs["done"], runs["cancelled"]]
    assert {i.reason for i in plan.remove} == {"size"}
    store.close()


def test_store_refuses_to_delete_an_active_run(tmp_path):
    store, _root, runs = _store(tmp_path)
    for name in ("queued", "running", "interrupted"):
        assert store.delete_execution(runs[name]) is False
        assert store.get_execution(runs[name]) is not None
    assert store.delete_execution("ex-000000000000") is False
    store.close()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "openhcs_nb.server.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_prune_cli_dry_run_then_prune_beside_a_running_server(
    server_factory, small_plate_path
):
    server = server_factory("pruned", workers=1).start()
    config = server.base / "server.toml"
    conn = hcs.connect(server.address)
    try:
        old = conn.submit(hcs.nuclei_count_pipeline(), str(small_plate_path), ["A01"])
        old.result(timeout=120)
        busy = conn.submit(slow_pipeline(60), str(small_plate_path))
        time.sleep(0.5)
        assert busy.state in ("queued", "running")
        dry = _cli(
            "prune", "--config", str(config), "--dry-run", "--older-than-days", "1e-9"
        )
        assert dry.returncode == 0, dry.stderr
        assert f"would remove {old.id}" in dry.stdout
        assert busy.id not in dry.stdout
        assert (server.results_root / old.id).is_dir()  # dry: nothing changed
        status = _cli("status", "--config", str(config), "--json")
        report = json.loads(status.stdout)
        assert report["executions"]["finished"] == 1
        assert (
            report["users"]["local"]["queued"] + report["users"]["local"]["running"]
            >= 1
        )
        real = _cli("prune", "--config", str(config), "--older-than-days", "1e-9")
        assert real.returncode == 0, real.stderr
        assert f"removed {old.id}" in real.stdout
        assert not (server.results_root / old.id).exists()
        # the busy run, still going through both prunes, is untouched
        assert busy.id not in real.stdout
        assert conn.status(busy.id).state in ("queued", "running")
        assert (server.results_root / busy.id).is_dir()
        ids = {e.execution_id for e in conn.executions()}
        assert busy.id in ids and old.id not in ids
        conn.cancel(busy.id)
        assert busy.wait(120)
        text = _cli("status", "--config", str(config)).stdout
        assert "executions: 1 cancelled" in text
        assert "live figures: off" in text
    finally:
        conn.close()


def test_prune_without_rules_says_how_to_set_them(tmp_path):
    config = tmp_path / "server.toml"
    config.write_text(f'[results]\nroot = "{tmp_path / "r"}"\n')
    out = _cli("prune", "--config", str(config))
    assert out.returncode == 2
    assert "set [retention] max_age_days or max_total_gib" in out.stderr


def test_json_log_lines_carry_the_run_ids():
    record = logging.LogRecord(
        "openhcs_nb.server",
        logging.INFO,
        __file__,
        1,
        "execution %s well %s failed: %s",
        ("ex-1", "B03", "ValueError: x"),
        None,
    )
    record.user = "alice"
    line = json.loads(JsonLines().format(record))
    assert line["execution_id"] == "ex-1"
    assert line["well"] == "B03"
    assert line["user"] == "alice"
    assert line["message"] == "execution ex-1 well B03 failed: ValueError: x"
    assert line["time"].endswith("Z")


def test_server_logs_json_lines_when_configured(server_factory, small_plate_path):
    server = server_factory("json", workers=1, extra='\n[logging]\nformat = "json"\n')
    server.start()
    conn = hcs.connect(server.address)
    try:
        run = conn.submit(hcs.nuclei_count_pipeline(), str(small_plate_path), ["A01"])
        run.result(timeout=120)
    finally:
        conn.close()
    server.stop()
    lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    submitted = [x for x in lines if x.get("execution_id") == run.id]
    assert submitted, server.log()[-2000:]
    assert any(x.get("user") == "local" for x in submitted)
