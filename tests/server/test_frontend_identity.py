"""Issue 11: a web front-end key acts only as the OMERO user whose live session
it presents, and sees only what that OMERO user ran."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("omero", reason="the omero extra (omero-py) is not installed")

from raw_client import RawClient
from web_server import (
    ALICE,
    ALICE_WEB,
    BOB,
    EXPIRED,
    FRONTEND,
    connect_as,
    end_session,
    start_web_server,
)

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client.errors import (
    RemoteFrontendNeedsSession,
    RemoteNotAuthorized,
    RemoteSessionInvalid,
    RemoteUnknownExecution,
)
from openhcs_nb.protocol import ErrorReply, Hello, ListExecutions, Status


@pytest.fixture(scope="module")
def server(tmp_path_factory, plates_root):
    process, users = start_web_server(tmp_path_factory.mktemp("frontend"), plates_root)
    yield process, users
    process.kill()


@pytest.fixture(scope="module")
def runs(server):
    """One finished notebook run of alice (plate 106) and one of bob (plate 101)."""
    process, users = server
    code = nuclei_count_pipeline().to_code()
    out = {}
    for key, session, plate in (
        ("alice", ALICE, "omero:106"),
        ("bob", BOB, "omero:101"),
    ):
        with connect_as(process, users, key, session) as conn:
            wells = conn.plate_info(plate).wells[:1]
            run = conn.submit(code, plate, wells)
            assert run.wait(120), run.state
            out[key] = run.id
    return out


def _audit(process) -> list[dict]:
    path = process.results_root / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_when_frontend_says_hello_without_a_session_then_every_command_is_refused(
    server,
):
    process, users = server
    with pytest.raises(RemoteFrontendNeedsSession, match="OMERO session"):
        connect_as(process, users, FRONTEND)
    raw = RawClient(process.address, keys=users.raw_keys(FRONTEND))
    try:
        hello, _ = raw.call(Hello(rid=raw.rid(), client="web"))
        listed, _ = raw.call(ListExecutions(rid=raw.rid()))
    finally:
        raw.close()
    for reply in (hello, listed):
        assert isinstance(reply, ErrorReply)
        assert reply.code == "frontend_needs_session"
        assert "\n" not in reply.message and reply.remote_traceback is None
    refused = [
        e
        for e in _audit(process)
        if e["user"] == FRONTEND and e["outcome"] == "refused"
    ]
    assert {e["action"] for e in refused} >= {"hello", "list_executions"}
    assert all("frontend_needs_session" in str(e["detail"]) for e in refused)


@pytest.mark.parametrize("key", [EXPIRED, "stolen-or-made-up-session-key"])
def test_when_frontend_presents_a_dead_or_unknown_session_then_it_acts_for_nobody(
    server, key
):
    process, users = server
    with pytest.raises(RemoteSessionInvalid):
        connect_as(process, users, FRONTEND, key)
    raw = RawClient(process.address, keys=users.raw_keys(FRONTEND))
    try:
        joined, _ = raw.call(Hello(rid=raw.rid(), client="web", omero_session=key))
        listed, _ = raw.call(ListExecutions(rid=raw.rid()))
    finally:
        raw.close()
    assert isinstance(joined, ErrorReply) and joined.code == "session_invalid"
    assert isinstance(listed, ErrorReply) and listed.code == "frontend_needs_session"


def test_when_frontend_acts_for_alice_then_it_sees_only_alices_executions(server, runs):
    process, users = server
    with connect_as(process, users, FRONTEND, ALICE) as web:
        assert web.server_info.omero_user == "alice"
        listed = {info.execution_id for info in web.executions()}
        assert runs["alice"] in listed and runs["bob"] not in listed
        assert web.status(runs["alice"]).omero_user == "alice"
        for refused in (web.status, web.cancel, web.attach):
            with pytest.raises(RemoteUnknownExecution):
                refused(runs["bob"])
    with connect_as(process, users, FRONTEND, BOB) as web:
        listed = {info.execution_id for info in web.executions()}
        assert runs["bob"] in listed and runs["alice"] not in listed


def test_when_a_new_connection_of_the_frontend_skips_the_session_then_it_inherits_none(
    server, runs
):
    process, users = server
    with connect_as(process, users, FRONTEND, ALICE) as web:
        assert web.status(runs["alice"]).execution_id == runs["alice"]
    raw = RawClient(process.address, keys=users.raw_keys(FRONTEND))
    try:
        status, _ = raw.call(Status(rid=raw.rid(), execution_id=runs["alice"]))
    finally:
        raw.close()
    assert isinstance(status, ErrorReply) and status.code == "frontend_needs_session"


def test_when_the_users_session_ends_then_the_frontend_can_no_longer_act_for_them(
    server, runs
):
    process, users = server
    raw = RawClient(process.address, keys=users.raw_keys(FRONTEND))
    try:
        hello = Hello(rid=raw.rid(), client="web", omero_session=ALICE_WEB)
        joined, _ = raw.call(hello)
        before, _ = raw.call(Status(rid=raw.rid(), execution_id=runs["alice"]))
        end_session(process, ALICE_WEB)  # alice logged out of OMERO.web
        after, _ = raw.call(Status(rid=raw.rid(), execution_id=runs["alice"]))
        again, _ = raw.call(Status(rid=raw.rid(), execution_id=runs["alice"]))
        rejoin, _ = raw.call(
            Hello(rid=raw.rid(), client="web", omero_session=ALICE_WEB)
        )
    finally:
        raw.close()
    assert joined.omero_user == "alice"
    assert before.execution.execution_id == runs["alice"]
    for refused in (after, again):
        assert isinstance(refused, ErrorReply), refused
        assert refused.code == "frontend_needs_session"
    assert "session of alice has ended" in after.message
    assert isinstance(rejoin, ErrorReply) and rejoin.code == "session_invalid"


def test_when_frontend_submits_then_the_run_belongs_to_the_omero_user(server):
    process, users = server
    code = nuclei_count_pipeline().to_code()
    with connect_as(process, users, FRONTEND, ALICE) as web:
        wells = web.plate_info("omero:106").wells[:1]
        run = web.submit(code, "omero:106", wells)
        assert run.wait(120), run.state
        info = web.status(run.id)
        with pytest.raises(RemoteNotAuthorized, match="OMERO plates"):
            web.submit(code, "small.ome.zarr")
    assert info.user == "omero:alice" and info.omero_user == "alice"
    with connect_as(process, users, FRONTEND, BOB) as web:
        with pytest.raises(RemoteUnknownExecution):
            web.status(run.id)
    accepted = [
        e
        for e in _audit(process)
        if e["action"] == "submit" and e.get("execution_id") == run.id
    ]
    assert accepted and accepted[0]["user"] == "omero:alice"
    assert f"via {FRONTEND}" in accepted[0]["peer"]
    followed = [
        (e["outcome"], e["detail"])
        for e in _audit(process)
        if e["action"] == "subscribe" and e.get("execution_id") == run.id
    ]
    # the web's handle followed its run live, not only by polling
    assert ("ok", "front end of its OMERO user") in followed, followed
    assert all(outcome == "ok" for outcome, _ in followed), followed


def test_when_frontend_polls_events_then_it_gets_json_without_pixels(server, runs):
    process, users = server
    with connect_as(process, users, FRONTEND, ALICE) as web:
        pages, cursor = [], 0
        while True:
            found, cursor = web.events(runs["alice"], since_seq=cursor, limit=2)
            if not found:
                break
            assert len(found) <= 2
            pages.extend(found)
        done = next(e for e in pages if e["type"] == "WellDone")
        images = web.well_preview(runs["alice"], done["well"])
        with pytest.raises(RemoteUnknownExecution):
            web.events(runs["bob"])
    seqs = [e["seq"] for e in pages]
    assert seqs == list(range(1, len(seqs) + 1))
    assert pages[-1]["type"] == "Finished"
    json.dumps(pages, allow_nan=False)  # what a web relay sends on
    assert done["previews"], done
    assert {p["name"] for p in done["previews"]} == set(images)
    for preview in done["previews"]:
        assert set(preview) == {"name", "dtype", "shape"}
        assert list(images[preview["name"]].shape) == preview["shape"]


def test_when_server_has_no_omero_then_frontend_keys_are_refused_at_hello(
    tmp_path_factory, plates_root
):
    process, users = start_web_server(
        tmp_path_factory.mktemp("frontend-no-omero"), plates_root, omero=False
    )
    try:
        with pytest.raises(RemoteFrontendNeedsSession, match="no OMERO"):
            connect_as(process, users, FRONTEND, ALICE)
        with connect_as(process, users, "alice") as notebook:
            assert notebook.server_info.user == "alice"
    finally:
        process.kill()


def test_when_server_restarts_then_a_web_run_waits_for_its_omero_user_and_resumes(
    tmp_path, plates_root
):
    process, users = start_web_server(tmp_path, plates_root, workers=1)
    try:
        with connect_as(process, users, FRONTEND, BOB) as web:
            wells = web.plate_info("omero:101").wells[:1]
            run = web.submit(nuclei_count_pipeline(), "omero:101", wells)
        process.kill()
        process.start()
        deadline = time.monotonic() + 30
        wanted = f"execution {run.id} waiting for its user to connect"
        while wanted not in process.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert wanted in process.log()
        with connect_as(process, users, "bob", BOB) as notebook:
            with pytest.raises(RemoteUnknownExecution):  # owned by omero:bob
                notebook.status(run.id)
        assert f"execution {run.id} resumes" not in process.log()
        with connect_as(process, users, FRONTEND, BOB) as web:
            table = web.attach(run.id).result(timeout=180)
            info = web.status(run.id)
        assert (table.status == "done").all(), table
        assert info.state == "done" and info.user == "omero:bob"
        assert f"execution {run.id} resumes" in process.log()
    finally:
        process.kill()
