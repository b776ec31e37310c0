"""A job store written by an earlier release opens, migrates and keeps its runs.

``fixtures/store-schema2.tar.gz`` is the results folder of a real server of
the release at schema 2 (``fixtures/make_store.py`` says how it was made): a
finished three-well run and a cancelled one, with their event logs, result
stores and audit log. The tests start today's server on a copy of it, as an
admin's upgrade does, and read it back through the client.
"""

from __future__ import annotations

import sqlite3
import tarfile
from pathlib import Path

import pytest
from server_process import ServerProcess

import openhcs_nb as hcs
from openhcs_nb.server import _jobs_schema as schema
from openhcs_nb.server.jobs import JobStore

FIXTURE = Path(__file__).parent / "fixtures" / "store-schema2.tar.gz"
FINISHED, CANCELLED = "ex-8be520493c2c", "ex-5c41c37ca5b8"


def _unpack(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(base, filter="data")
    return base / "results" / "jobs.sqlite3"


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_fixture_is_an_old_store():
    """Guards the fixture itself: it must stay a schema-2 store."""
    with tarfile.open(FIXTURE) as archive:
        names = archive.getnames()
    assert "results/jobs.sqlite3" in names
    assert any(n.startswith(f"results/{FINISHED}/") for n in names)


def test_store_migrates_in_place_and_keeps_a_backup(tmp_path):
    path = _unpack(tmp_path)
    assert _version(path) == 2
    with JobStore(path) as store:
        finished = store.get_execution(FINISHED)
        cancelled = store.get_execution(CANCELLED)
        assert finished is not None
        assert cancelled is not None
        assert (finished.state.name, finished.done, finished.total) == (
            "FINISHED",
            3,
            3,
        )
        assert cancelled.state.name == "CANCELLED"
        events = store.events_since(FINISHED, 0, 1000)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert _version(path) == schema.SCHEMA_VERSION
    backup = path.with_name("jobs.sqlite3.schema2.bak")
    if schema.SCHEMA_VERSION > 2:
        assert _version(backup) == 2
        assert backup.stat().st_mode & 0o077 == 0
    else:
        assert not backup.exists()  # nothing to migrate: nothing copied


def test_backup_is_a_consistent_copy(tmp_path):
    from openhcs_nb.server._job_file import backup_before_migration

    path = _unpack(tmp_path)
    with sqlite3.connect(path) as db:
        target = backup_before_migration(db, path, 2)
        again = backup_before_migration(db, path, 2)
    assert target == again
    with sqlite3.connect(target) as copy:
        rows = copy.execute("SELECT id, state FROM executions ORDER BY id").fetchall()
    assert rows == [(CANCELLED, "CANCELLED"), (FINISHED, "FINISHED")]


@pytest.fixture
def upgraded_server(tmp_path):
    _unpack(tmp_path / "srv")
    server = ServerProcess(tmp_path / "srv", tmp_path / "plates", workers=1)
    (tmp_path / "plates").mkdir()
    server.start()
    yield server
    server.stop()


def test_upgraded_server_serves_the_old_runs(upgraded_server):
    conn = hcs.connect(upgraded_server.address)
    try:
        listed = {e.execution_id: e for e in conn.executions()}
        assert {FINISHED, CANCELLED} <= set(listed)
        assert listed[FINISHED].state == "done"
        assert listed[FINISHED].label == "finished run"
        assert listed[CANCELLED].state == "cancelled"
        table = conn.attach(FINISHED).result(timeout=60)
        assert sorted(table["well"]) == ["A01", "A02", "A03"]
        assert (table["count"] > 0).all()
    finally:
        conn.close()
