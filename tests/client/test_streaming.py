"""Executions on a real server: results, callbacks, iteration, attach, cancel."""

from __future__ import annotations

import asyncio
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from client_helpers import SMALL, slow_pipeline
from server_process import ServerProcess

from openhcs_nb import nuclei_count_pipeline, run_local
from openhcs_nb.client import ConnectionClosed, Execution, WellEvent, connect
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate

WELLS = ["A01", "A02", "A03", "B01", "B02", "B03"]


def callbacks_drained(execution: Execution) -> None:
    """Return once every callback queued so far has run (they run in FIFO order)."""
    ran = threading.Event()
    execution.add_done_callback(lambda _: ran.set())
    assert ran.wait(30)


def test_when_run_remotely_then_the_table_equals_run_local(conn, small_plate_path):
    execution = conn.submit(nuclei_count_pipeline(), SMALL, label="same as local")
    remote = execution.result(timeout=120)
    local = run_local(nuclei_count_pipeline(), small_plate_path, workers=0).wells
    assert list(remote.columns) == list(local.columns)
    pd.testing.assert_frame_equal(remote, local)
    assert execution.state == "done"
    assert execution.progress == (6, 0, 6)
    assert execution.failed_wells == {}


def test_when_watching_then_each_well_reaches_callbacks_once_and_late_ones_replay(
    conn,
):
    execution = conn.submit(nuclei_count_pipeline(), SMALL)
    early: list[WellEvent] = []
    execution.on_well(early.append)
    execution.result(timeout=120)
    late: list[WellEvent] = []
    execution.on_well(late.append)
    callbacks_drained(execution)
    assert sorted(w.well for w in early) == WELLS
    assert [w.seq for w in early] == sorted(w.seq for w in early)
    assert [w.well for w in late] == [w.well for w in early]
    assert all(w.status == "done" and w.summary["count"] > 0 for w in early)
    assert all(any(k.startswith("labels/") for k in w.previews) for w in early)
    assert set(execution.previews("A01")) == set(early[0].previews)


def test_when_iterating_then_every_well_is_yielded_until_the_end(conn):
    execution = conn.submit(nuclei_count_pipeline(), SMALL)
    assert sorted(event.well for event in execution) == WELLS
    assert execution.done()
    # A second loop after the end replays the wells already seen.
    assert len(list(execution)) == 6


def test_when_async_iterating_then_the_event_loop_keeps_running(conn):
    execution = conn.submit(slow_pipeline(10), SMALL)

    async def watch() -> tuple[list[str], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        wells = []
        ticks_at_first = None
        async for event in execution:
            if ticks_at_first is None:
                ticks_at_first = ticks
            wells.append(event.well)
        stop.set()
        await task
        return wells, ticks_at_first or 0

    wells, ticks_before_first_well = asyncio.run(watch())
    assert sorted(wells) == WELLS
    # The ticker ran while the loop waited for the first well: nothing blocked.
    assert ticks_before_first_well > 0


def test_when_attached_from_a_new_connection_mid_run_then_it_gets_every_well(
    demo_server, conn
):
    execution = conn.submit(slow_pipeline(), SMALL)
    next(iter(execution))  # the run is under way
    with connect(demo_server.address) as restarted_kernel:
        again = restarted_kernel.attach(execution.id)
        assert again.plate == SMALL
        seen: list[WellEvent] = []
        again.on_well(seen.append)
        table = again.result(timeout=120)
        callbacks_drained(again)
    assert sorted(table["well"]) == WELLS
    assert sorted(w.well for w in seen) == WELLS
    execution.wait(120)


def test_when_attached_after_the_end_then_everything_is_still_there(demo_server, conn):
    first = conn.submit(nuclei_count_pipeline(), SMALL).result(timeout=120)
    execution_id = conn.executions()[0].execution_id
    with connect(demo_server.address) as late:
        again = late.attach(execution_id)
        assert again.wait(60)
        assert again.state == "done"
        pd.testing.assert_frame_equal(again.result(), first)
        assert again.previews("B03")


def test_when_attached_twice_then_the_same_handle_is_returned(conn):
    execution = conn.submit(nuclei_count_pipeline(), SMALL)
    assert conn.attach(execution.id) is execution
    execution.wait(120)


def test_when_cancelled_mid_run_then_state_is_cancelled_and_table_is_partial(conn):
    execution = conn.submit(slow_pipeline(60), SMALL)
    next(iter(execution))
    assert execution.cancel()
    assert execution.wait(60)
    assert execution.state == "cancelled"
    table = execution.result()
    assert 1 <= len(table) < 6
    assert conn.status(execution.id).state == "cancelled"


def test_when_executions_are_listed_then_html_shows_them(conn):
    execution = conn.submit(nuclei_count_pipeline(), SMALL, label="listed")
    execution.wait(120)
    html = conn._repr_html_()
    assert execution.id in html
    assert "workers" in html
    assert execution.id in execution._repr_html_()
    assert "6 done" in execution._repr_html_()
    assert execution.id in repr(execution)


def test_when_full_resolution_is_fetched_then_images_are_plate_sized(conn):
    execution = conn.submit(nuclei_count_pipeline(), SMALL, preview_size=64)
    execution.wait(120)
    small = execution.previews("A02")
    full = execution.fetch_full("A02")
    assert max(small["image/DAPI"].shape) <= 64
    assert full["image/DAPI"].shape == (256, 256)
    assert any(name.startswith("labels/") for name in full)


def test_when_a_well_fails_then_it_is_a_failed_row_like_run_local(tmp_path):
    root = tmp_path / "plates"
    spec = SyntheticPlateSpec(
        rows=1, columns=2, fields=1, channels=("DAPI", "GFP"), shape=(64, 64), seed=3
    )
    generate_plate(spec, root / "broken.ome.zarr", format="ome-zarr")
    shutil.rmtree(root / "broken.ome.zarr" / "A" / "2" / "0")  # well A02 unreadable
    server = ServerProcess(tmp_path / "server", root).start()
    try:
        with connect(server.address) as conn:
            execution = conn.submit(nuclei_count_pipeline(), "broken.ome.zarr")
            failed: list[WellEvent] = []
            execution.on_well(lambda w: failed.append(w) if not w.ok else None)
            remote = execution.result(timeout=120)
            callbacks_drained(execution)
    finally:
        server.kill()
    local = run_local(
        nuclei_count_pipeline(), root / "broken.ome.zarr", workers=0
    ).wells
    pd.testing.assert_frame_equal(remote, local)
    assert list(remote["status"]) == ["done", "failed"]
    assert execution.progress == (1, 1, 2)
    assert "missing field" in execution.failed_wells["A02"]
    assert [w.well for w in failed] == ["A02"]
    assert "Traceback" in (failed[0].traceback or "")


def test_when_threads_share_a_connection_then_every_submission_finishes(conn):
    def one(well: str) -> list[str]:
        execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=[well])
        return list(execution.result(timeout=120)["well"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        tables = list(pool.map(one, WELLS))
    assert tables == [[w] for w in WELLS]


def test_when_the_connection_closes_mid_run_then_waiters_wake_up(demo_server):
    connection = connect(demo_server.address)
    execution = connection.submit(slow_pipeline(40), SMALL)
    outcome: list[BaseException] = []

    def iterate() -> None:
        try:
            list(execution)
        except ConnectionClosed as exc:
            outcome.append(exc)

    reader = threading.Thread(target=iterate)
    reader.start()
    connection.close()
    reader.join(30)
    assert not reader.is_alive()
    assert isinstance(outcome[0], ConnectionClosed)
    assert execution.wait(0) is False
    with pytest.raises(ConnectionClosed, match="attach"):
        execution.result()
    with connect(demo_server.address) as other:
        assert other.cancel(execution.id) == "cancelled"
