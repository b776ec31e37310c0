"""The JSON-lines audit log."""

from __future__ import annotations

import datetime
import json
import stat
import threading
from pathlib import Path

import pytest

from openhcs_nb.server.audit import AuditLog, read_audit


def test_when_entries_are_recorded_then_they_read_back_in_order(tmp_path):
    path = tmp_path / "logs" / "audit.jsonl"
    with AuditLog(path) as audit:
        first = audit.record(
            user="alice",
            action="submit",
            outcome="accepted",
            execution_id="ex-0123456789ab",
            plate="demo",
            pipeline_hash="ab" * 32,
            detail={"wells": 96},
        )
        audit.record(user="bob", action="cancel", outcome="refused", detail="not owner")
    entries = read_audit(path)
    assert entries[0] == first
    assert (entries[1].user, entries[1].outcome, entries[1].detail) == (
        "bob",
        "refused",
        "not owner",
    )
    assert datetime.datetime.fromisoformat(first.time).tzinfo is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_when_log_is_reopened_then_entries_are_appended(tmp_path):
    path = tmp_path / "audit.jsonl"
    for user in ("alice", "bob"):
        with AuditLog(path, fsync=True) as audit:
            audit.record(user=user, action="hello", outcome="ok")
    assert [entry.user for entry in read_audit(path)] == ["alice", "bob"]


def test_when_detail_is_not_json_then_it_is_written_as_text(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as audit:
        audit.record(
            user="u", action="submit", outcome="error", detail={"p": Path("/x")}
        )
    assert read_audit(path)[0].detail == {"p": "/x"}


def test_when_threads_record_concurrently_then_every_line_is_whole(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as audit:

        def write(user: str) -> None:
            for index in range(100):
                audit.record(
                    user=user, action="status", outcome="ok", detail="x" * index
                )

        threads = [threading.Thread(target=write, args=(f"u{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 400
    assert all(json.loads(line)["action"] == "status" for line in lines)


def test_when_a_line_is_corrupt_then_read_names_it(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as audit:
        audit.record(user="u", action="a", outcome="ok")
    with path.open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(ValueError, match="line 2"):
        read_audit(path)
