"""The execution server on a real Dask cluster (``dask scheduler``/``dask worker``).

One scheduler and two single-threaded workers serve the whole module; each
test starts its own ``openhcs-server`` process pointed at them.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections import Counter

import pandas as pd
import pytest
from dask_cluster import DaskCluster
from raw_client import RawClient
from test_daemon import SMALL, slow_pipeline, submit, wait_finished

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.protocol import (
    Cancel,
    CancelReply,
    Finished,
    Hello,
    HelloReply,
    WellDone,
    WellFailed,
    WellStarted,
)
from openhcs_nb.server.local import ServerStartError

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"), workers=2).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def dask_server(server_factory, cluster):
    """Build (not start) a server whose wells go to the module's cluster."""

    def make(name: str = "dask-server", in_flight: int = 2, **options):
        extra = (
            'executor = "dask"\n'
            f'dask_scheduler = "{cluster.address}"\n'
            f"dask_wells_in_flight = {in_flight}\n"
        )
        return server_factory(name, extra=extra, **options)

    return make


def _outcomes(events) -> Counter[str]:
    return Counter(e.well for e, _, _ in events if isinstance(e, WellDone | WellFailed))


def _tables(root, execution_id: str) -> dict[str, pd.DataFrame]:
    store = root / execution_id
    return {
        name: pd.read_parquet(store / f"{name}.parquet")
        .sort_values(["well", *(["label"] if name == "objects" else [])])
        .reset_index(drop=True)
        for name in ("wells", "objects")
    }


def _wait_running(cluster: DaskCluster, timeout: float = 60.0) -> dict[str, list]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = {w: keys for w, keys in cluster.running_wells().items() if keys}
        if busy:
            return busy
        time.sleep(0.05)
    raise TimeoutError("no well reached a Dask worker")


def test_when_run_on_dask_then_every_well_once_and_results_equal_own_workers(
    dask_server, server_factory, cluster
):
    on_dask = dask_server().start()
    local = server_factory("local-server").start()
    client = RawClient(on_dask.address, on_dask.event_address)
    other = RawClient(local.address, local.event_address)
    try:
        hello, _ = client.call(Hello(rid=client.rid(), client="test"))
        assert isinstance(hello, HelloReply)
        assert hello.workers == 2  # the wells in flight on the cluster
        port = cluster.client.scheduler_info()["services"]["dashboard"]
        assert hello.dashboard_url == f"http://127.0.0.1:{port}/status"
        health = hello.dashboard_url.replace("/status", "/health")
        with urllib.request.urlopen(health, timeout=10) as answer:
            assert answer.read() == b"ok"  # the scheduler's own web server
        sub = submit(client, nuclei_count_pipeline())
        reference = submit(other, nuclei_count_pipeline())
        events, reply = wait_finished(client, sub.execution_id)
        local_events, _ = wait_finished(other, reference.execution_id)
        assert reply.state == "done", on_dask.log()
        assert _outcomes(events) == Counter(sub.wells), "every well exactly once"
        started = Counter(e.well for e, _, _ in events if isinstance(e, WellStarted))
        assert started == Counter(sub.wells)
        seqs = [e.seq for e, _, _ in events]
        assert seqs == list(range(1, len(seqs) + 1))
        assert "openhcs-well" in cluster.task_prefixes(), "wells ran on Dask"
        mine = {e.well: e.summary for e, _, _ in events if isinstance(e, WellDone)}
        theirs = {
            e.well: e.summary for e, _, _ in local_events if isinstance(e, WellDone)
        }
        assert mine == theirs
        dask_tables = _tables(on_dask.results_root, sub.execution_id)
        local_tables = _tables(local.results_root, reference.execution_id)
        for name, table in dask_tables.items():
            pd.testing.assert_frame_equal(table, local_tables[name], check_exact=True)
    finally:
        client.close()
        other.close()
    _panel_shows_the_dashboard(on_dask, hello.dashboard_url)


def _panel_shows_the_dashboard(server, url: str) -> None:
    """The notebook's run panel links the dashboard the server announced."""
    from openhcs_nb.client import connect
    from openhcs_nb.jupyter.run_panel import RunPanel

    conn = connect(server.address, timeout=10.0)
    try:
        execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=["A01"])
        execution.wait(60)
        panel = RunPanel(execution, tick=None)
        assert f'href="{url}"' in panel.dashboard.value
        panel.close()
    finally:
        conn.close()


def test_when_cancelled_mid_run_then_running_dask_tasks_stop_unwritten(
    dask_server, cluster
):
    server = dask_server().start()
    client = RawClient(server.address, server.event_address)
    try:
        sub = submit(client, slow_pipeline(900))
        busy = _wait_running(cluster)
        reply, _ = client.call(Cancel(rid=client.rid(), execution_id=sub.execution_id))
        assert isinstance(reply, CancelReply)
        events, _ = wait_finished(client, sub.execution_id, timeout=120)
        finished = [e for e, _, _ in events if isinstance(e, Finished)]
        assert [f.state for f in finished] == ["cancelled"]
        assert finished[0].done < finished[0].total
        _wait_idle(cluster)
        # A well that was running when the cancel came never wrote its outputs:
        # the task was interrupted, not left to finish.
        interrupted = {key.split("-")[2] for keys in busy.values() for key in keys} - {
            e.well for e, _, _ in events if isinstance(e, WellDone)
        }
        assert interrupted
        parts = server.results_root / sub.execution_id / "parts"
        for well in interrupted:
            assert not (parts / f"{well}.parquet").exists(), well
    finally:
        client.close()


def _wait_idle(cluster: DaskCluster, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while any(cluster.running_wells().values()):
        if time.monotonic() > deadline:
            raise TimeoutError("the Dask workers stayed busy")
        time.sleep(0.1)


def test_when_a_dask_worker_is_killed_mid_well_then_it_is_retried_and_others_finish(
    dask_server, cluster
):
    server = dask_server().start()
    client = RawClient(server.address, server.event_address)
    try:
        sub = submit(client, slow_pipeline(600), wells=["A01", "A02", "A03", "B01"])
        busy = _wait_running(cluster)
        victim = next(iter(busy))
        os.kill(cluster.worker_pid(victim), signal.SIGKILL)
        events, reply = wait_finished(client, sub.execution_id, timeout=180)
        assert reply.state == "done", server.log()
        assert _outcomes(events) == Counter(sub.wells), "every well exactly once"
        failed = [e for e, _, _ in events if isinstance(e, WellFailed)]
        # Dask reruns the lost task on a live worker; should it give up, the
        # well fails with the cause named, never silently.
        assert all(f.error.startswith("worker_lost:") for f in failed), failed
        done = {e.well for e, _, _ in events if isinstance(e, WellDone)}
        assert len(done) >= len(sub.wells) - 1
        cluster.client.wait_for_workers(2, timeout=60)  # the nanny restarts it
        assert victim not in cluster.client.scheduler_info()["workers"]
    finally:
        client.close()


def test_when_server_is_killed_on_dask_then_restart_resumes_and_completes(
    dask_server, cluster
):
    server = dask_server().start()
    client = RawClient(server.address, server.event_address)
    sub = submit(client, slow_pipeline(300))
    client.subscribe(sub.execution_id, sub.stream_key)
    client.events(until=WellDone)
    server.kill()
    client.close()

    server.start()
    client = RawClient(server.address, server.event_address)
    try:
        events, reply = wait_finished(client, sub.execution_id, timeout=180)
        assert reply.state == "done", server.log()
        done = Counter(e.well for e, _, _ in events if isinstance(e, WellDone))
        assert done == Counter(sub.wells), "every well exactly once"
        finished = [e for e, _, _ in events if isinstance(e, Finished)]
        assert finished[-1].done == len(sub.wells)
    finally:
        client.close()


def test_when_the_dask_scheduler_is_unreachable_then_the_server_says_so(
    server_factory, tmp_path
):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_factory(
        "no-dask",
        extra=(
            'executor = "dask"\n'
            f'dask_scheduler = "tcp://127.0.0.1:{port}"\n'
            "dask_connect_timeout_s = 1\n"
        ),
    )
    with pytest.raises(ServerStartError) as info:  # the process exits
        server.start()
    lines = [x for x in str(info.value).splitlines() if "openhcs-server: error" in x]
    assert len(lines) == 1, str(info.value)
    assert "Traceback" not in str(info.value)
    assert f"tcp://127.0.0.1:{port}" in lines[0]
    assert "[execution] dask_scheduler" in lines[0]
