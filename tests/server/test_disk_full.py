"""A full disk ends the runs it hits with one cause, and frees their slots.

The first tests drive the real scheduler and job store with stand-in workers;
the last one fills a real (tmpfs) disk under a real server.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from scheduler_doubles import FakeWorker, Harness, ok

import openhcs_nb
from openhcs_nb.execution.well import WellError, WellResult
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server.jobs import ExecutionState, ExecutionTrigger, WellState

SMALL = "small.ome.zarr"


def test_when_the_job_store_fills_mid_run_then_the_run_fails_once_space_is_back(
    tmp_path, small_plate
):
    h: Harness | None = None
    seen = threading.Event()

    def fill_on_second_well(task):
        if task.well == "A02":
            h.store.full.set()  # the disk fills while this well runs
            seen.set()
        return ok(task)

    worker = FakeWorker(0, fill_on_second_well)
    h = Harness(tmp_path, small_plate, [worker], max_concurrent=1)
    try:
        run = h.submit("alice", ["A01", "A02", "A03"])
        assert seen.wait(30)
        # The slot is freed while the disk is still full: the run is no longer
        # active in this process, even though the store could not be told yet.
        pause = threading.Event()
        for _ in range(1500):
            if h.scheduler.unwritten_failures("alice"):
                break
            pause.wait(0.02)
        assert h.scheduler.unwritten_failures("alice") == 1
        assert run.id not in h.scheduler.active_ids()
        assert h.store.refused >= 2  # the well, then the run's failure
        assert h.store.get_execution(run.id).state is ExecutionState.RUNNING
        h.store.full.clear()  # space is back
        finished = h.finished(run.id)
        assert finished.state == "failed"
        assert "disk is full" in finished.error
        assert finished.error.startswith("storage_error: ")
        assert "\n" not in finished.error
        record = h.store.get_execution(run.id)
        assert record.state is ExecutionState.FAILED
        assert record.error == finished.error
        states = {w.well: w.state for w in h.store.wells(run.id)}
        assert states == {
            "A01": WellState.DONE,
            "A02": WellState.FAILED,
            "A03": WellState.FAILED,
        }
        assert worker.ran == ["A01", "A02"]  # A03 was never started
        assert h.store.count_active("alice") == 0
        assert h.scheduler.unwritten_failures("alice") == 0
        # the same user can run again, and it completes
        again = h.submit("alice", ["B01"])
        assert h.finished(again.id).state == "done"
        assert h.finished_count(run.id) == 1
    finally:
        h.close()


def test_when_the_results_tables_cannot_be_written_then_the_run_fails(
    tmp_path, small_plate, monkeypatch
):
    def no_space(self, results):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(ResultsStore, "finalize", no_space)
    h = Harness(tmp_path, small_plate, [FakeWorker(0)])
    try:
        run = h.submit("alice", ["A01", "A02"])
        finished = h.finished(run.id)
        assert finished.state == "failed"  # not "done" with an error attached
        assert "No space left on device" in finished.error
        assert finished.error.startswith("storage_error: the results tables")
        assert h.store.get_execution(run.id).state is ExecutionState.FAILED
        assert h.store.count_active("alice") == 0
    finally:
        h.close()


def test_when_a_well_hits_a_full_disk_then_the_rest_of_the_run_is_not_tried(
    tmp_path, small_plate
):
    def full(task):
        message = f"[Errno 28] No space left on device: '/results/{task.well}'"
        return "ok", WellResult(task.well, error=WellError("OSError", message, ""))

    worker = FakeWorker(0, full)
    h = Harness(tmp_path, small_plate, [worker], max_concurrent=1)
    try:
        run = h.submit("alice", ["A01", "A02", "A03", "B01"])
        finished = h.finished(run.id)
        assert finished.state == "failed"
        assert "No space left on device" in finished.error
        assert worker.ran == ["A01"]
        assert {w.state for w in h.store.wells(run.id)} == {WellState.FAILED}
        assert (finished.done, finished.failed, finished.total) == (0, 4, 4)
    finally:
        h.close()


def test_when_one_outcome_cannot_be_stored_then_only_that_well_fails(
    tmp_path, small_plate
):
    def odd_a02(task):
        if task.well == "A02":  # a summary the wire cannot carry: a bug, not a disk
            return "ok", WellResult(task.well, {"count": object()})
        return ok(task)

    h = Harness(tmp_path, small_plate, [FakeWorker(0, odd_a02)], max_concurrent=1)
    try:
        run = h.submit("alice", ["A01", "A02", "A03"])
        finished = h.finished(run.id)
        assert finished.state == "done"
        assert (finished.done, finished.failed) == (2, 1)
        wells = {w.well: w for w in h.store.wells(run.id)}
        assert wells["A02"].state is WellState.FAILED
        assert wells["A02"].error.startswith("TypeError: ")
    finally:
        h.close()


def test_when_a_run_is_failed_in_the_store_then_its_unsettled_wells_fail_with_it(
    tmp_path,
):
    from openhcs_nb.server._events import finished_draft
    from openhcs_nb.server.jobs import InvalidTransition, JobStore

    with JobStore(tmp_path / "jobs.sqlite3") as store:
        run = store.create_execution("alice", "p", "", ["A01", "A02", "A03"], {})
        store.set_execution_state(run.id, ExecutionTrigger.START)
        store.record_well_started(run.id, "A01")
        store.record_well_started(run.id, "A02")
        store.record_well_done(run.id, "A01", b"", draft_of(run.id))
        cause = "storage_error: the job store could not be written (disk full)"
        stored = store.fail_execution(
            run.id, cause, lambda record: finished_draft(record, "failed", cause)
        )
        record = store.get_execution(run.id)
        assert record.state is ExecutionState.FAILED
        assert (record.done, record.failed, record.error) == (1, 2, cause)
        wells = {w.well: (w.state, w.error) for w in store.wells(run.id)}
        assert wells == {
            "A01": (WellState.DONE, None),
            "A02": (WellState.FAILED, cause),
            "A03": (WellState.FAILED, cause),
        }
        assert stored.kind == "finished" and stored.seq == record.last_seq
        with pytest.raises(InvalidTransition):
            store.fail_execution(run.id, "again")
        assert store.get_execution(run.id).last_seq == record.last_seq


def draft_of(execution_id: str):
    from openhcs_nb.protocol import WellDone
    from openhcs_nb.server._events import draft

    return draft(WellDone, execution_id, well="A01", summary={}, objects=0, elapsed=0)


# --- a real disk ----------------------------------------------------------------


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        check=True,
        capture_output=True,
    )


def _fill(path: Path) -> Path:
    """Write one file until the disk says ENOSPC; returns the file."""
    filler = path / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _wait_for_log(server, text: str, seconds: float = 60.0) -> None:
    done = threading.Event()
    for _ in range(int(seconds / 0.1)):
        if text in server.log():
            return
        done.wait(0.1)
    raise AssertionError(f"the server never logged {text!r}:\n{server.log()[-3000:]}")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None,
    reason="mounting a small tmpfs to fill needs root and mount(8)",
)
def test_when_the_disk_fills_then_the_run_fails_and_the_user_can_run_again(
    server_factory, tmp_path
):
    from multiuser import make_users

    users = make_users(tmp_path, ["alice", "bob"])
    server = server_factory(workers=2, max_concurrent=2, extra=users.security_toml)
    disk = server.results_root
    _mount_tmpfs(disk, "40m")
    try:
        server.start()
        with (
            openhcs_nb.connect(server.address, **users.connect_args("alice")) as alice,
            openhcs_nb.connect(server.address, **users.connect_args("bob")) as bob,
        ):
            pipeline = openhcs_nb.nuclei_count_pipeline()
            run = alice.submit(pipeline, SMALL)
            filler = _fill(disk)
            try:
                # The run gives up while the disk is still full (the failure
                # itself may not be storable yet) ...
                _wait_for_log(server, f"execution {run.id} failed")
                # ... and bob is served meanwhile (a preview writes nothing).
                preview = bob.preview(pipeline, SMALL, "A01")
                assert preview.objects > 0
            finally:
                filler.unlink()
            # Once space is back the failure is stored: not "running" for ever.
            assert run.wait(timeout=60), "the run never ended"
            status = alice.status(run.id)
            assert status.state == "failed", status
            assert any(
                text in (status.error or "")
                for text in ("No space left on device", "disk is full")
            ), status.error
            assert "\n" not in status.error
            again = alice.submit(pipeline, SMALL, wells=["A01"])
            table = again.result(timeout=120)
            assert (table.status == "done").all()
    finally:
        server.kill()
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)
