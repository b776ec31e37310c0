"""Fair turns on a real server shared by two real users (own CurveZMQ keys)."""

from __future__ import annotations

import threading

import pytest
from multiuser import make_users
from scheduler_doubles import FakeWorker, Harness

import openhcs_nb
from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.server.errors import QuotaExceededError
from openhcs_nb.server.scheduler import PreviewJob, SchedulerLimits
from openhcs_nb.server.workers import PreviewTask

SMALL = "small.ome.zarr"


def test_when_alice_queues_many_runs_then_bobs_one_well_run_is_not_kept_waiting(
    server_factory, tmp_path
):
    users = make_users(tmp_path, ["alice", "bob"])
    # One worker, two run slots: every well is one turn, so order is exact.
    server = server_factory(workers=1, max_concurrent=2, extra=users.security_toml)
    server.start()
    pipeline = openhcs_nb.nuclei_count_pipeline()
    with (
        openhcs_nb.connect(server.address, **users.connect_args("alice")) as alice,
        openhcs_nb.connect(server.address, **users.connect_args("bob")) as bob,
    ):
        runs = [alice.submit(pipeline, SMALL, label=f"a{i}") for i in range(3)]
        mine = bob.submit(pipeline, SMALL, wells=["A01"])
        assert mine.result(timeout=300).status.eq("done").all()
        for run in runs:
            assert run.result(timeout=300).status.eq("done").all()
        theirs = [alice.status(run.id) for run in runs]
        bobs = bob.status(mine.id)
    # First come, first served would let two of alice's runs end while bob
    # waits (a2 is ahead of him in the queue). Fair admission lets bob in at
    # the first free slot, and his well is the very next turn.
    ended_while_bob_waited = [
        info
        for info in theirs
        if bobs.submitted_at <= info.finished_at <= bobs.finished_at
    ]
    assert len(ended_while_bob_waited) <= 1, [(i.label, i.finished_at) for i in theirs]
    assert bobs.finished_at < max(info.finished_at for info in theirs)
    assert bobs.user == "bob"
    assert {info.user for info in theirs} == {"alice"}


def test_when_a_user_has_two_previews_in_flight_then_a_third_is_refused(
    tmp_path, small_plate
):
    release = threading.Event()
    started = threading.Event()

    def held(task):
        started.set()
        assert release.wait(30)
        return "ok", task.well

    limits = SchedulerLimits(max_previews_per_user=2)
    h = Harness(tmp_path, small_plate, [FakeWorker(0, held)], limits=limits)
    replies: list[str] = []
    done = threading.Semaphore(0)

    def reply(status, payload):
        replies.append(status)
        done.release()

    try:
        plan = compile_pipeline(nuclei_count_pipeline(), small_plate, ["A01"])
        task = PreviewTask(plan, "A01", None, 0, 64)
        h.scheduler.preview(PreviewJob(task, reply, "bob"))
        assert started.wait(30)  # one running
        h.scheduler.preview(PreviewJob(task, reply, "bob"))  # one queued
        with pytest.raises(QuotaExceededError, match="max_previews_per_user = 2"):
            h.scheduler.preview(PreviewJob(task, reply, "bob"))
        h.scheduler.preview(PreviewJob(task, reply, "alice"))  # others may
        release.set()
        for _ in range(3):
            assert done.acquire(timeout=30)
        assert replies == ["ok", "ok", "ok"]
        h.scheduler.preview(PreviewJob(task, reply, "bob"))  # room again
        assert done.acquire(timeout=30)
    finally:
        release.set()
        h.close()
