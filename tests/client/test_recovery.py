"""Lost events, a dead server, a run that fails as a whole: nothing is lost."""

from __future__ import annotations

import shutil
import threading

import pytest
from client_helpers import SMALL, drop_events, slow_pipeline
from server_process import ServerProcess

from openhcs_nb.client import (
    Execution,
    RemoteExecutionError,
    ServerUnavailable,
    WellEvent,
    connect,
)

WELLS = ["A01", "A02", "A03", "B01", "B02", "B03"]


def watch(execution: Execution) -> list[WellEvent]:
    seen: list[WellEvent] = []
    execution.on_well(seen.append)
    return seen


def callbacks_drained(execution: Execution) -> None:
    ran = threading.Event()
    execution.add_done_callback(lambda _: ran.set())
    assert ran.wait(30)


def test_when_the_event_socket_drops_mid_run_then_backfill_gives_every_well(conn):
    execution = conn.submit(slow_pipeline(10), SMALL)
    seen = watch(execution)
    next(iter(execution))
    drop_events(conn, reopen_after=0.5)
    table = execution.result(timeout=120)
    callbacks_drained(execution)
    assert sorted(table["well"]) == WELLS
    assert sorted(w.well for w in seen) == WELLS  # each exactly once


def test_when_events_stop_for_good_then_polling_still_finishes_the_run(conn):
    execution = conn.submit(slow_pipeline(10), SMALL)
    seen = watch(execution)
    drop_events(conn, reopen_after=3600)
    assert execution.wait(120)
    callbacks_drained(execution)
    assert sorted(w.well for w in seen) == WELLS


@pytest.mark.slow
def test_when_the_server_is_killed_and_restarted_then_the_run_completes(
    fresh_server,
):
    with connect(fresh_server.address, timeout=5.0) as conn:
        execution = conn.submit(slow_pipeline(10), SMALL)
        seen = watch(execution)
        next(iter(execution))
        fresh_server.kill()
        with pytest.raises(ServerUnavailable):
            conn.plates(timeout=0.5)
        fresh_server.start()
        table = execution.result(timeout=120)
        callbacks_drained(execution)
        assert sorted(table["well"]) == WELLS
        assert sorted(w.well for w in seen) == WELLS
        assert conn.plates() == [SMALL]
        assert "unreachable" not in conn._repr_html_()


def test_when_the_server_is_gone_then_html_says_unreachable_without_hanging(
    fresh_server,
):
    conn = connect(fresh_server.address)
    try:
        fresh_server.kill()
        html = conn._repr_html_()
        assert "unreachable" in html
    finally:
        conn.close()


@pytest.mark.slow
def test_when_a_run_fails_as_a_whole_then_result_raises(tmp_path, small_plate_path):
    root = tmp_path / "plates"
    shutil.copytree(small_plate_path, root / SMALL)
    server = ServerProcess(tmp_path / "server", root).start()
    try:
        with connect(server.address, timeout=5.0) as conn:
            execution = conn.submit(slow_pipeline(20), SMALL)
            next(iter(execution))
            server.kill()
            shutil.rmtree(root / SMALL)  # the plate is gone: it cannot resume
            server.start()
            with pytest.raises(RemoteExecutionError, match="failed"):
                execution.result(timeout=120)
            assert execution.state == "failed"
            assert execution.error
    finally:
        server.kill()
