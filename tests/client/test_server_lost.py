"""A real server killed mid-run: the client notices, says how to reattach."""

from __future__ import annotations

import time

import pytest
from client_helpers import SMALL, slow_pipeline

from openhcs_nb.client import Connection, ServerLost, connect

WELLS = ["A01", "A02", "A03", "B01", "B02", "B03"]


def wait_for(check, seconds: float = 60.0) -> bool:
    """Poll ``check`` until true; False after ``seconds`` (a hang guard only)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def missed(conn: Connection) -> int:
    return conn._link.heartbeat.missed


@pytest.mark.slow
def test_when_the_server_is_killed_then_runs_end_as_server_lost_and_reattach(
    fresh_server,
):
    with connect(
        fresh_server.address, heartbeat_interval=0.5, heartbeat_misses=3
    ) as conn:
        execution = conn.submit(slow_pipeline(10), SMALL)
        next(iter(execution))  # one well is in: the run is live
        fresh_server.kill()
        assert execution.wait(60)
        assert execution.state == "server lost"
        with pytest.raises(ServerLost) as info:
            execution.result(timeout=0)
        message = str(info.value)
        assert message.startswith(f"server lost: {conn.address} did not answer")
        assert f"conn.attach({execution.id!r})" in message
        assert "\n" not in message
        assert execution.error == message
        with pytest.raises(ServerLost):  # iteration ends too, no hang
            list(execution)

        fresh_server.start()  # back later than the window: reattach by id
        again = conn.attach(execution.id)
        assert again is not execution
        table = again.result(timeout=120)
        assert sorted(table["well"]) == WELLS
        assert again.state == "done"
        assert execution.state == "server lost"  # the old handle keeps its story


@pytest.mark.slow
def test_when_the_server_returns_within_the_window_then_nothing_is_lost(
    fresh_server,
):
    with connect(
        fresh_server.address, heartbeat_interval=0.5, heartbeat_misses=400
    ) as conn:
        execution = conn.submit(slow_pipeline(10), SMALL)
        next(iter(execution))
        fresh_server.kill()
        assert wait_for(lambda: missed(conn) >= 2)  # it did notice the silence
        fresh_server.start()
        table = execution.result(timeout=120)
        assert sorted(table["well"]) == WELLS
        assert execution.state == "done"
        assert missed(conn) == 0
