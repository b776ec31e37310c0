"""WellStarted: stored then published when a worker takes a well, seq gap-free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scheduler_doubles import FakeWorker, Harness

from openhcs_nb.protocol import WellDone, WellStarted, decode_event
from openhcs_nb.server.jobs import StoredEvent


def decoded(stored: list[StoredEvent], execution_id: str) -> list[Any]:
    """The execution's published events, decoded, in publishing order."""
    return [
        decode_event([s.payload])[0] for s in stored if s.execution_id == execution_id
    ]


def test_when_a_worker_takes_a_well_then_well_started_precedes_its_done(
    tmp_path: Path, small_plate: Any
) -> None:
    h = Harness(tmp_path, small_plate, [FakeWorker(0)], max_concurrent=1)
    try:
        run = h.submit("ada", ["A01", "A02", "B01"])
        h.finished(run.id)
        events = decoded(h.events, run.id)
        started = [e.well for e in events if isinstance(e, WellStarted)]
        assert sorted(started) == ["A01", "A02", "B01"]
        for well in started:
            kinds = [type(e) for e in events if getattr(e, "well", None) == well]
            assert kinds == [WellStarted, WellDone]
        seqs = [e.seq for e in events]
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
        fetched = h.store.events_since(run.id, 0)
        assert [s.seq for s in fetched] == sorted(seqs)
        assert sum(s.kind == "well_started" for s in fetched) == 3
    finally:
        h.close()
