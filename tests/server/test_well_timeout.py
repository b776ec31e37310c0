"""A well or preview past its time limit is stopped; the worker serves on."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from multiuser import make_users
from scheduler_doubles import FakeWorker, Harness, ok

import openhcs_nb
from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.server.jobs import WellState
from openhcs_nb.server.scheduler import PreviewJob, SchedulerLimits
from openhcs_nb.server.workers import (
    PreviewTask,
    TaskTimedOut,
    WellTask,
    start_workers,
)

SMALL = "small.ome.zarr"


@pytest.fixture
def worker():
    (one,) = start_workers(1, [])
    yield one
    one.stop(timeout=5)


def _task(plate, well: str = "A01") -> WellTask:
    plan = compile_pipeline(nuclei_count_pipeline(), plate, [well])
    return WellTask(plan, well, None, 0)  # type: ignore[arg-type]


def test_when_a_well_runs_past_its_limit_then_it_is_interrupted_and_the_worker_serves_on(
    worker, small_plate
):
    pid = worker.process.pid
    with pytest.raises(TaskTimedOut) as info:
        worker.run(_task(small_plate), timeout=0.01, grace=30)
    assert info.value.limit == 0.01
    assert worker.process.pid == pid  # back from the interrupt, not replaced
    status, result = worker.run(_task(small_plate, "A02"))
    assert status == "ok"
    assert result.ok
    assert result.well == "A02"


def test_when_a_worker_ignores_the_interrupt_then_it_is_replaced(worker, small_plate):
    old = worker.process.pid
    os.kill(old, signal.SIGSTOP)  # a worker stuck where no signal gets through
    with pytest.raises(TaskTimedOut):
        worker.run(_task(small_plate), timeout=0.01, grace=0.5)
    assert worker.process.pid != old
    assert not _alive(old)
    status, result = worker.run(_task(small_plate, "A02"))
    assert (status, result.ok) == ("ok", True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_when_the_scheduler_sees_a_timeout_then_the_well_fails_and_the_plate_goes_on(
    tmp_path, small_plate
):
    def slow_a02(task):
        if task.well == "A02":
            raise TaskTimedOut(30)
        return ok(task)

    limits = SchedulerLimits(well_timeout_s=30)
    h = Harness(tmp_path, small_plate, [FakeWorker(0, slow_a02)], limits=limits)
    try:
        run = h.submit("alice", ["A01", "A02", "A03"])
        finished = h.finished(run.id)
        assert finished.state == "done"
        assert (finished.done, finished.failed) == (2, 1)
        wells = {w.well: w for w in h.store.wells(run.id)}
        assert wells["A02"].state is WellState.FAILED
        assert wells["A02"].error == (
            "well_timeout: well A02 ran longer than [limits] well_timeout_s = 30 s"
        )
        assert wells["A03"].state is WellState.DONE
    finally:
        h.close()


def test_when_a_preview_times_out_then_its_reply_says_well_timeout(
    tmp_path, small_plate
):
    def too_slow(task):
        raise TaskTimedOut(2)

    limits = SchedulerLimits(preview_timeout_s=2)
    h = Harness(tmp_path, small_plate, [FakeWorker(0, too_slow)], limits=limits)
    replies: list[tuple[str, object]] = []
    got = threading.Event()

    def reply(status, payload):
        replies.append((status, payload))
        got.set()

    try:
        plan = compile_pipeline(nuclei_count_pipeline(), small_plate, ["B02"])
        task = PreviewTask(plan, "B02", None, 0, 64)
        h.scheduler.preview(PreviewJob(task, reply, "bob"))
        assert got.wait(30)
        status, (kind, message, _) = replies[0]
        assert (status, kind) == ("error", "well_timeout")
        assert message == (
            "preview of B02 ran longer than [limits] preview_timeout_s = 2 s"
        )
        # the preview's share is given back: bob may preview again
        h.scheduler.preview(PreviewJob(task, reply, "bob"))
        h.scheduler.preview(PreviewJob(task, reply, "bob"))
    finally:
        h.close()


def test_when_wells_time_out_on_a_real_server_then_they_fail_and_previews_still_work(
    server_factory, tmp_path
):
    users = make_users(tmp_path, ["alice"])
    server = server_factory(
        workers=1,
        extra=users.security_toml,
        env={"OPENHCS_NB_LIMITS_WELL_TIMEOUT_S": "0.01"},
    )
    server.start()
    pipeline = openhcs_nb.nuclei_count_pipeline()
    with openhcs_nb.connect(server.address, **users.connect_args("alice")) as conn:
        run = conn.submit(pipeline, SMALL, wells=["A01", "B03"])
        table = run.result(timeout=120).set_index("well")
        assert run.state == "done"  # the plate went on to its end
        assert (table.status == "failed").all()
        assert table.loc["B03", "error"].startswith(
            "well_timeout: well B03 ran longer than [limits] well_timeout_s = 0.01 s"
        )
        # the worker survived (or was replaced) and serves the next request
        preview = conn.preview(pipeline, SMALL, "A02")
        assert preview.objects > 0
