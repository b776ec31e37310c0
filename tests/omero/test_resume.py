"""Issue 8: an OMERO run interrupted by a restart waits for its user, then resumes.

The server never stores session keys, so after ``kill -9`` it cannot reopen an
OMERO plate by itself. The run stays queued with a note saying why, is invisible
to another OMERO user, and resumes, keeping every finished well, once its own
user connects again with a session.
"""

from __future__ import annotations

import time

from cli_with_double import ENV, FLAG
from omero_fixture import ALICE, BOB

from openhcs_nb import connect, nuclei_count_pipeline
from openhcs_nb.client import RemoteUnknownExecution


def _server(tmp_path, omero_repo, plates_root):
    from server_process import ServerProcess

    return ServerProcess(
        tmp_path / "server",
        plates_root,
        workers=1,
        extra=(
            "[omero]\n"
            "enabled = true\n"
            'host = "double"\n'
            f'data_dir = "{omero_repo.parent}"\n'
            "retry_delay_s = 0.1\n"
        ),
        env=ENV,
        args=(FLAG, str(omero_repo)),
        module="cli_with_double",
    )


def test_when_server_restarts_mid_omero_run_then_it_waits_for_the_users_session(
    tmp_path, omero_repo, plates_root
):
    server = _server(tmp_path, omero_repo, plates_root).start()
    try:
        with connect(server.address, omero_session=BOB) as conn:
            run = conn.submit(nuclei_count_pipeline(), "omero:101")
            deadline = time.monotonic() + 120
            while conn.status(run.id).done < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            done_before = conn.status(run.id).done
            assert done_before >= 1
        server.kill()
        server.start()
        with connect(server.address) as anonymous:  # no session: cannot see it
            try:
                anonymous.status(run.id)
                raise AssertionError("an OMERO run was visible without its session")
            except RemoteUnknownExecution:
                pass
        with connect(server.address, omero_session=ALICE) as alice:
            try:
                alice.status(run.id)
                raise AssertionError("alice saw bob's OMERO run")
            except RemoteUnknownExecution:
                pass
        with connect(server.address, omero_session=BOB) as conn:
            resumed = conn.attach(run.id)
            table = resumed.result(timeout=180)
            info = conn.status(run.id)
        assert info.state == "done", info
        assert (table.status == "done").all(), table
        assert info.done == info.total
    finally:
        server.kill()


def test_when_waiting_for_its_session_then_the_log_names_the_run(
    tmp_path, omero_repo, plates_root
):
    server = _server(tmp_path, omero_repo, plates_root).start()
    try:
        with connect(server.address, omero_session=BOB) as conn:
            run = conn.submit(nuclei_count_pipeline(), "omero:101")
        server.kill()
        server.start()
        deadline = time.monotonic() + 30
        wanted = f"execution {run.id} waiting for its user to connect"
        while wanted not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert wanted in server.log()
        assert f"execution {run.id} resumes" not in server.log()
        with connect(server.address, omero_session=BOB) as conn:
            table = conn.attach(run.id).result(timeout=180)
        assert (table.status == "done").all(), table
        assert f"execution {run.id} resumes" in server.log()
    finally:
        server.kill()
