"""The Prometheus endpoint: counters from published events, gauges from the store.

Units feed :class:`ServerMetrics` real stored events and a real job store;
the integration test scrapes a real server process during and after a run.
"""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest
from client_helpers import slow_pipeline
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

import openhcs_nb as hcs
from openhcs_nb.protocol import WellDone, WellFailed
from openhcs_nb.server._events import draft
from openhcs_nb.server.admin_cli import format_status, live_figures
from openhcs_nb.server.jobs import JobStore
from openhcs_nb.server.metrics import ServerMetrics
from openhcs_nb.server.worker_health import WorkerHealth


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in registry.collect():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _publish(store: JobStore, execution_id: str, well: str, event) -> object:
    store.record_well_started(execution_id, well)
    if event is WellDone:
        return store.record_well_done(
            execution_id,
            well,
            b"",
            draft(WellDone, execution_id, well=well, elapsed=2.5),
        )
    return store.record_well_failed(
        execution_id,
        well,
        event,
        None,
        draft(WellFailed, execution_id, well=well, error=event),
    )


def test_events_are_counted_and_the_queue_read_per_user(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    alice = store.create_execution("alice", "p", "code", ["A01", "A02", "A03"], {})
    bob = store.create_execution("bob", "p", "code", ["B01", "B02"], {})
    health = [WorkerHealth(0, True, 2, None), WorkerHealth(1, False, 0, None)]
    metrics = ServerMetrics(
        tmp_path / "jobs.sqlite3", tmp_path, lambda: health, size_interval_s=0.01
    )
    for stored in (
        _publish(store, alice.id, "A01", WellDone),
        _publish(store, alice.id, "A02", "well_timeout: ran longer than 5 s"),
        _publish(store, bob.id, "B01", "ValueError: bad"),
    ):
        metrics.observe(stored)
    store.record_well_started(bob.id, "B02")
    got = _samples(metrics.registry)
    assert got[("openhcs_wells_total", (("outcome", "done"),))] == 1
    assert got[("openhcs_wells_total", (("outcome", "timed_out"),))] == 1
    assert got[("openhcs_wells_total", (("outcome", "failed"),))] == 1
    assert got[("openhcs_well_duration_seconds_sum", ())] == 2.5
    assert got[("openhcs_well_duration_seconds_bucket", (("le", "5.0"),))] == 1
    assert got[("openhcs_well_duration_seconds_bucket", (("le", "2.0"),))] == 0
    assert got[("openhcs_queue_depth", (("user", "alice"),))] == 1  # A03
    assert ("openhcs_queue_depth", (("user", "bob"),)) not in got
    assert got[("openhcs_running_wells", (("user", "bob"),))] == 1  # B02
    assert got[("openhcs_workers", (("state", "alive"),))] == 1
    assert got[("openhcs_workers", (("state", "dead"),))] == 1
    assert got[("openhcs_worker_restarts", (("worker", "0"),))] == 2
    assert (
        got[("openhcs_store_bytes", ())] >= (tmp_path / "jobs.sqlite3").stat().st_size
    )
    assert got[("openhcs_resident_bytes", (("process", "server"),))] > 0
    metrics.close()
    store.close()


def test_nothing_lands_in_the_global_registry(tmp_path):
    from prometheus_client import REGISTRY

    before = {m.name for m in REGISTRY.collect()}
    ServerMetrics(tmp_path / "none.sqlite3", tmp_path, list).close()
    assert {m.name for m in REGISTRY.collect()} == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def metered_server(server_factory):
    port = _free_port()
    server = server_factory(
        "metered", workers=1, extra=f"\n[metrics]\nport = {port}\n"
    ).start()
    return server, port


def test_endpoint_during_and_after_a_run(metered_server, small_plate_path):
    server, port = metered_server
    assert server.ready_info["metrics"] == port
    conn = hcs.connect(server.address)
    try:
        run = conn.submit(slow_pipeline(5), str(small_plate_path))
        seen_queue = 0.0
        deadline = time.monotonic() + 60
        while run.state not in ("done", "failed") and time.monotonic() < deadline:
            now = _scrape(port)
            seen_queue = max(
                seen_queue, now.get(("openhcs_queue_depth", (("user", "local"),)), 0)
            )
            time.sleep(0.2)
        run.result(timeout=120)
        assert seen_queue >= 1  # six wells, one worker: some waited
        after = _scrape(port)
        assert after[("openhcs_wells_total", (("outcome", "done"),))] == 6
        assert after[("openhcs_well_duration_seconds_count", ())] == 6
        assert after[("openhcs_workers", (("state", "alive"),))] == 1
        assert ("openhcs_queue_depth", (("user", "local"),)) not in after
        assert after[("openhcs_resident_bytes", (("process", "workers"),))] > 0
        live = live_figures("127.0.0.1", port)
        assert live["wells"]["done"] == 6
        lines = format_status(
            {
                "results": "r",
                "executions": {"finished": 1},
                "users": {},
                "store_bytes": 0,
                "live": live,
            }
        )
        assert "wells since start: 6 done, 0 failed, 0 timed out" in lines
    finally:
        conn.close()
