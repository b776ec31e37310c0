"""The job state tables and the SQLite job store, against real files."""

from __future__ import annotations

import itertools
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from openhcs_nb.errors import OpenHCSError, UnknownWellError
from openhcs_nb.server.jobs import (
    EXECUTION_TRANSITIONS,
    WELL_TRANSITIONS,
    EventDraft,
    ExecutionState,
    ExecutionTrigger,
    InvalidTransition,
    JobStore,
    UnknownExecutionError,
    WellState,
    WellTrigger,
    execution_transition,
    well_transition,
)

E, ET, W, WT = ExecutionState, ExecutionTrigger, WellState, WellTrigger


def draft(kind: str = "well_done") -> EventDraft:
    return EventDraft(kind, lambda seq: f"{kind}:{seq}".encode())


@pytest.fixture
def store(tmp_path: Path):
    with JobStore(tmp_path / "jobs.sqlite3") as job_store:
        yield job_store


def new_execution(store: JobStore, wells=("A01",), user: str = "alice") -> str:
    return store.create_execution(user, "demo", "p = Pipeline()", list(wells), {}).id


def reach_execution(store: JobStore, state: ExecutionState) -> str:
    """A one-well execution in ``state``; when RUNNING its well is already DONE."""
    execution_id = new_execution(store)
    if state is E.QUEUED:
        return execution_id
    if state is E.FAILED:
        store.set_execution_state(execution_id, ET.FAIL, error="compile error")
        return execution_id
    if state is E.CANCELLED:
        store.cancel(execution_id)
        return execution_id
    store.set_execution_state(execution_id, ET.START)
    store.record_well_started(execution_id, "A01")
    store.record_well_done(execution_id, "A01", b"summary", draft())
    if state is E.FINISHED:
        store.set_execution_state(execution_id, ET.FINISH)
    if state is E.INTERRUPTED:
        store.set_execution_state(execution_id, ET.INTERRUPT)
    return execution_id


def reach_well(store: JobStore, state: WellState) -> str:
    """A RUNNING one-well execution whose well is in ``state``."""
    execution_id = new_execution(store)
    store.set_execution_state(execution_id, ET.START)
    if state is not W.PENDING:
        store.record_well_started(execution_id, "A01")
    if state is W.DONE:
        store.record_well_done(execution_id, "A01", b"summary", draft())
    if state is W.FAILED:
        store.record_well_failed(execution_id, "A01", "boom", "Traceback", draft())
    if state is W.CANCELLED:
        store.record_well_cancelled(execution_id, "A01")
    return execution_id


WELL_CALLS = {
    WT.START: lambda s, ex: s.record_well_started(ex, "A01"),
    WT.SUCCEED: lambda s, ex: s.record_well_done(ex, "A01", b"sum", draft()),
    WT.FAIL: lambda s, ex: s.record_well_failed(ex, "A01", "err", None, draft()),
    WT.CANCEL: lambda s, ex: s.record_well_cancelled(ex, "A01"),
}


# --- the tables ---------------------------------------------------------------------


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(E, ET)))
def test_when_execution_pair_is_checked_then_only_table_pairs_pass(state, trigger):
    if (state, trigger) in EXECUTION_TRANSITIONS:
        assert (
            execution_transition(state, trigger)
            is EXECUTION_TRANSITIONS[state, trigger]
        )
    else:
        with pytest.raises(
            InvalidTransition, match=f"{trigger.name} from {state.name}"
        ):
            execution_transition(state, trigger)


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(W, WT)))
def test_when_well_pair_is_checked_then_only_table_pairs_pass(state, trigger):
    if (state, trigger) in WELL_TRANSITIONS:
        assert well_transition(state, trigger) is WELL_TRANSITIONS[state, trigger]
    else:
        with pytest.raises(
            InvalidTransition, match=f"{trigger.name} from {state.name}"
        ):
            well_transition(state, trigger)


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(E, ET)))
def test_when_store_applies_execution_trigger_then_it_follows_the_table(
    store, state, trigger
):
    execution_id = reach_execution(store, state)
    before = store.get_execution(execution_id)
    assert before.state is state
    if (state, trigger) in EXECUTION_TRANSITIONS:
        store.set_execution_state(execution_id, trigger, event=draft("state"))
        after = store.get_execution(execution_id)
        assert after.state is EXECUTION_TRANSITIONS[state, trigger]
        assert after.last_seq == before.last_seq + 1
    else:
        with pytest.raises(InvalidTransition):
            store.set_execution_state(execution_id, trigger, event=draft("state"))
        assert store.get_execution(execution_id) == before


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(W, WELL_CALLS)))
def test_when_store_applies_well_trigger_then_it_follows_the_table(
    store, state, trigger
):
    execution_id = reach_well(store, state)
    before = (store.wells(execution_id), store.get_execution(execution_id))
    if (state, trigger) in WELL_TRANSITIONS:
        WELL_CALLS[trigger](store, execution_id)
        assert store.wells(execution_id)[0].state is WELL_TRANSITIONS[state, trigger]
    else:
        with pytest.raises(InvalidTransition, match="well A01 of ex-"):
            WELL_CALLS[trigger](store, execution_id)
        assert (store.wells(execution_id), store.get_execution(execution_id)) == before


def test_when_wells_are_unsettled_then_finish_is_refused(store):
    execution_id = new_execution(store, wells=("A01", "A02"))
    store.set_execution_state(execution_id, ET.START)
    with pytest.raises(InvalidTransition, match="2 wells unsettled"):
        store.set_execution_state(execution_id, ET.FINISH)
    assert store.get_execution(execution_id).state is E.RUNNING


# --- records and events -------------------------------------------------------------


def test_when_states_are_stored_then_sqlite_holds_enum_names(store, tmp_path):
    execution_id = reach_well(store, W.RUNNING)
    raw = sqlite3.connect(tmp_path / "jobs.sqlite3")
    assert raw.execute("SELECT state FROM executions").fetchone() == ("RUNNING",)
    assert raw.execute("SELECT state FROM wells").fetchone() == ("RUNNING",)
    assert execution_id.startswith("ex-")
    assert len(execution_id) == 15


def test_when_store_is_open_then_journal_is_wal(store, tmp_path):
    raw = sqlite3.connect(tmp_path / "jobs.sqlite3")
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_when_well_done_returns_then_another_connection_sees_it(store, tmp_path):
    execution_id = reach_well(store, W.RUNNING)
    event = store.record_well_done(execution_id, "A01", b"\x81\xa1n\x01", draft())
    with JobStore(tmp_path / "jobs.sqlite3") as reader:
        assert reader.events_since(execution_id, 0) == [event]
        assert reader.wells(execution_id)[0].summary == b"\x81\xa1n\x01"
        assert reader.get_execution(execution_id).done == 1
    assert event.payload == f"well_done:{event.seq}".encode()


def test_when_fetching_since_seq_then_events_come_in_order_with_limit(store):
    execution_id = new_execution(store)
    for index in range(5):
        store.append_event(execution_id, "log", b"p%d" % index, arrays=b"a" * index)
    page = store.events_since(execution_id, 2, limit=2)
    assert [event.seq for event in page] == [3, 4]
    assert [event.payload for event in page] == [b"p2", b"p3"]
    assert page[1].arrays == b"aaa"
    assert store.events_since(execution_id, 0, include_arrays=False)[4].arrays is None
    assert store.events_since(execution_id, 5) == []


def test_when_threads_append_concurrently_then_seqs_are_gap_free(store):
    execution_id = new_execution(store)
    seen: dict[int, list[int]] = {}

    def append(worker: int) -> None:
        seen[worker] = [
            store.append_event(execution_id, "log", b"w%d" % worker).seq
            for _ in range(50)
        ]

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(itertools.chain(*seen.values())) == list(range(1, 201))
    assert all(seqs == sorted(seqs) for seqs in seen.values())
    stored = store.events_since(execution_id, 0, limit=500)
    assert [event.seq for event in stored] == list(range(1, 201))
    assert store.get_execution(execution_id).last_seq == 200


def test_when_execution_or_well_is_unknown_then_errors_name_them(store):
    execution_id = new_execution(store)
    with pytest.raises(UnknownExecutionError, match="ex-nope"):
        store.append_event("ex-nope", "log", b"")
    with pytest.raises(UnknownWellError, match="'H12'"):
        store.record_well_started(execution_id, "H12")
    assert store.get_execution("ex-nope") is None


def test_when_wells_repeat_or_are_empty_then_create_is_refused(store):
    with pytest.raises(ValueError, match="A01"):
        store.create_execution("u", "demo", "code", ["A01", "A02", "A01"], {})
    with pytest.raises(ValueError, match="at least one well"):
        store.create_execution("u", "demo", "code", [], {})
    assert store.list_executions() == []


def test_when_execution_is_created_then_record_keeps_what_was_given(store):
    record = store.create_execution("bob", "/p", "code", ["B02", "A01"], {"n": [1]})
    assert (record.user, record.plate, record.options) == ("bob", "/p", {"n": [1]})
    assert record.state is E.QUEUED
    assert record.total == 2
    assert len(record.pipeline_hash) == 64
    assert store.pending_wells(record.id) == ["B02", "A01"]


def test_when_listing_then_user_and_active_filters_apply(store):
    first = new_execution(store, user="alice")
    done = reach_execution(store, E.FINISHED)
    other = new_execution(store, user="bob")
    assert [r.id for r in store.list_executions()] == [first, done, other]
    assert [r.id for r in store.list_executions("alice", include_finished=False)] == [
        first
    ]
    assert store.count_active("alice") == 1
    assert store.count_active("bob") == 1
    assert store.count_active("carol") == 0


def test_when_cancelled_then_pending_wells_stop_and_running_are_reported(store):
    execution_id = new_execution(store, wells=("A01", "A02", "A03"))
    store.set_execution_state(execution_id, ET.START)
    store.record_well_started(execution_id, "A01")
    store.record_well_started(execution_id, "A02")
    store.record_well_done(execution_id, "A01", b"s", draft())
    outcome = store.cancel(execution_id, draft("cancelled"))
    assert outcome.running_wells == ("A02",)
    assert outcome.cancelled_wells == 1
    assert outcome.event.seq == 2
    record = store.get_execution(execution_id)
    assert record.state is E.CANCELLED
    assert not record.settled
    store.record_well_cancelled(execution_id, "A02")
    assert store.get_execution(execution_id).settled
    assert [w.state for w in store.wells(execution_id)] == [
        W.DONE,
        W.CANCELLED,
        W.CANCELLED,
    ]
    with pytest.raises(InvalidTransition, match="CANCEL from CANCELLED"):
        store.cancel(execution_id)


def test_when_failed_then_error_and_traceback_are_kept(store):
    execution_id = reach_well(store, W.FAILED)
    well = store.wells(execution_id)[0]
    assert (well.error, well.traceback) == ("boom", "Traceback")
    assert store.get_execution(execution_id).failed == 1


# --- restart and durability ---------------------------------------------------------


def test_when_server_restarts_then_running_work_is_requeued(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    with JobStore(path) as store:
        queued = new_execution(store)
        running = new_execution(store, wells=("A01", "A02", "A03"))
        store.set_execution_state(running, ET.START)
        for well in ("A01", "A02"):
            store.record_well_started(running, well)
        store.record_well_done(running, "A01", b"s", draft())
        cancelled = new_execution(store)
        store.set_execution_state(cancelled, ET.START)
        store.record_well_started(cancelled, "A01")
        store.cancel(cancelled)
        finished = reach_execution(store, E.FINISHED)
    with JobStore(path) as store:
        assert store.recover_after_restart() == [queued, running]
        assert store.get_execution(running).state is E.QUEUED
        wells = {w.well: w for w in store.wells(running)}
        assert wells["A01"].state is W.DONE
        assert (wells["A02"].state, wells["A02"].attempt) == (W.PENDING, 1)
        assert store.pending_wells(running) == ["A02", "A03"]
        assert store.wells(cancelled)[0].state is W.CANCELLED
        assert store.get_execution(cancelled).settled
        assert store.get_execution(finished).state is E.FINISHED
        store.set_execution_state(running, ET.START)
        store.record_well_started(running, "A02")
        assert store.wells(running)[1].attempt == 2


def test_when_schema_is_newer_then_store_refuses_to_open(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version=99")
    raw.close()
    with pytest.raises(OpenHCSError, match="schema 99 is newer"):
        JobStore(path)


KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from openhcs_nb.server.jobs import EventDraft, ExecutionTrigger, JobStore
    store = JobStore(Path(sys.argv[1]))
    wells = [f"A{i:02d}" for i in range(1, int(sys.argv[2]) + 1)]
    ex = store.create_execution("alice", "demo", "code", wells, {})
    store.set_execution_state(ex.id, ExecutionTrigger.START)
    print(ex.id, flush=True)
    for well in wells:
        store.record_well_started(ex.id, well)
        store.record_well_done(
            ex.id, well, well.encode(), EventDraft("well_done", lambda s: b"%d" % s)
        )
    os.kill(os.getpid(), 9)
    """
)


def test_when_server_is_killed_after_well_done_then_wells_survive(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    result = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(path), "20"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    execution_id = result.stdout.strip()
    with JobStore(path) as store:
        wells = store.wells(execution_id)
        assert [w.state for w in wells] == [W.DONE] * 20
        assert [w.summary for w in wells] == [w.well.encode() for w in wells]
        events = store.events_since(execution_id, 0)
        assert [e.payload for e in events] == [b"%d" % n for n in range(1, 21)]
        assert store.get_execution(execution_id).done == 20
        assert store.recover_after_restart() == [execution_id]
