"""Event subscriptions of a web front end: OMERO runs whose stream key it holds.

A front end acts for many OMERO users on one key, so the owner check of the
event socket cannot compare users; the run's OMERO user and its stream key
(which the front end only sees while acting, with a live session, as that
OMERO user) decide instead. Everyone else keeps the owner rule.
"""

from __future__ import annotations

from openhcs_nb.protocol import event_topic
from openhcs_nb.server.jobs import JobStore
from openhcs_nb.server.subscriptions import decide

WEB = frozenset({"omeroweb"})


def _request(record, key: str | None = None) -> bytes:
    return b"\x01" + event_topic(record.id, key or record.stream_key)


def test_front_end_follows_omero_runs_with_their_key_only(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    web_run = store.create_execution(
        "omero:alice", "omero:106", "code", ["A01"], {}, omero_user="alice"
    )
    notebook_run = store.create_execution(
        "alice", "omero:106", "code", ["A01"], {}, omero_user="alice"
    )
    local_run = store.create_execution("bob", "small.ome.zarr", "code", ["A01"], {})
    for record in (web_run, notebook_run):
        ok = decide(_request(record), "omeroweb", store, curve=True, frontends=WEB)
        assert ok.allowed, ok.reason
    refused = decide(_request(local_run), "omeroweb", store, curve=True, frontends=WEB)
    assert not refused.allowed  # not an OMERO run: no OMERO user to act for
    wrong_key = "0" * len(web_run.stream_key)
    guess = decide(
        _request(web_run, wrong_key), "omeroweb", store, curve=True, frontends=WEB
    )
    assert not guess.allowed
    # a key user who is not a front end still needs to own the run
    other = decide(_request(web_run), "bob", store, curve=True, frontends=WEB)
    assert not other.allowed
    assert not decide(_request(web_run), "omeroweb", store, curve=True).allowed
    store.close()
