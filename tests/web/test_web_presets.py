"""Presets from the browser: list, create from code or a file, edit, delete, launch.

The execution server validates and stores presets and decides who sees and
changes them; these tests check what the pages show of its decisions.
"""

from __future__ import annotations

import pytest
from client_helpers import SMALL, slow_pipeline
from django.core.files.uploadedfile import SimpleUploadedFile
from web_client import client_of, needs_presets, one_line, run_for
from web_double import SESSIONS

from openhcs_nb import connect, nuclei_count_pipeline

pytestmark = needs_presets
CODE = nuclei_count_pipeline().to_code()


def rows(client) -> dict[str, str]:
    """Preset name -> its table row, as the pipelines page lists them."""
    text = client.get("/openhcs/pipelines/").content.decode()
    found = {}
    for chunk in text.split('<tr class="ohcs-preset" data-preset="')[1:]:
        name, _, rest = chunk.partition('"')
        found[name] = rest.split("</tr>")[0]
    return found


def test_when_bob_saves_code_then_it_is_listed_and_alice_does_not_see_it(plugin):
    bob = client_of("bob")
    reply = bob.post(
        "/openhcs/pipelines/",
        {"name": "web-nuclei", "description": "count nuclei", "code": CODE},
    )
    assert reply.status_code == 302, one_line(reply)
    listed = rows(bob)
    assert "count nuclei" in listed["web-nuclei"]
    assert "/openhcs/pipelines/web-nuclei/edit/" in listed["web-nuclei"]
    assert "web-nuclei" not in rows(client_of("alice"))  # not in her groups


def test_when_the_code_is_refused_then_the_loaders_reason_is_one_line(plugin):
    reply = client_of("bob").post(
        "/openhcs/pipelines/", {"name": "evil", "code": "import os\nos.system('x')\n"}
    )
    assert reply.status_code == 400
    line = one_line(reply)
    assert "line 1" in line and "\n" not in line
    assert "evil" not in rows(client_of("bob"))


def test_when_a_file_is_uploaded_then_its_code_is_saved(plugin):
    upload = SimpleUploadedFile("pipe.py", CODE.encode(), content_type="text/x-python")
    reply = client_of("bob").post(
        "/openhcs/pipelines/", {"name": "from-file", "upload": upload}
    )
    assert reply.status_code == 302, one_line(reply)
    assert plugin.get(SESSIONS["bob"]).preset("from-file").code == CODE


def test_when_the_name_is_taken_then_saving_again_is_refused(plugin):
    bob = client_of("bob")
    bob.post("/openhcs/pipelines/", {"name": "twice", "code": CODE})
    reply = bob.post("/openhcs/pipelines/", {"name": "twice", "code": CODE})
    assert reply.status_code == 409
    assert "twice" in one_line(reply)


def test_when_bob_edits_his_preset_then_the_new_description_is_listed(plugin):
    bob = client_of("bob")
    bob.post("/openhcs/pipelines/", {"name": "to-edit", "code": CODE})
    page = bob.get("/openhcs/pipelines/to-edit/edit/")
    assert page.status_code == 200
    assert "to-edit" in page.content.decode()
    reply = bob.post(
        "/openhcs/pipelines/to-edit/edit/",
        {"name": "to-edit", "description": "edited", "code": CODE},
    )
    assert reply.status_code == 302, one_line(reply)
    assert "edited" in rows(bob)["to-edit"]


def test_when_bob_deletes_his_preset_then_it_is_gone(plugin):
    bob = client_of("bob")
    bob.post("/openhcs/pipelines/", {"name": "to-delete", "code": CODE})
    assert "to-delete" in rows(bob)
    reply = bob.post("/openhcs/pipelines/to-delete/delete/")
    assert reply.status_code == 302
    assert "to-delete" not in rows(bob)
    again = bob.post("/openhcs/pipelines/to-delete/delete/")
    assert again.status_code == 404
    assert "to-delete" in one_line(again)


def test_when_alice_edits_a_preset_she_cannot_see_then_it_is_unknown(plugin):
    client_of("bob").post("/openhcs/pipelines/", {"name": "bobs-own", "code": CODE})
    reply = client_of("alice").get("/openhcs/pipelines/bobs-own/edit/")
    assert reply.status_code == 404
    assert "bobs-own" in one_line(reply)


def test_when_bob_launches_a_preset_on_a_plate_then_he_lands_on_its_results(plugin):
    bob = client_of("bob")
    bob.post("/openhcs/pipelines/", {"name": "launch-me", "code": CODE})
    page = bob.get("/openhcs/execute/101/")
    assert page.status_code == 200
    assert 'value="launch-me"' in page.content.decode()
    reply = bob.post("/openhcs/execute/101/", {"preset": "launch-me", "wells": "a01"})
    assert reply.status_code == 302, one_line(reply)
    execution_id = reply["Location"].rstrip("/").rsplit("/", 1)[-1]
    connection = plugin.get(SESSIONS["bob"])
    run = connection.attach(execution_id)
    assert run.wait(timeout=120)
    assert sorted(run.wells) == ["A01"] and run.state == "done"
    assert connection.status(execution_id).label == "launch-me"


def test_when_the_preset_does_not_exist_then_the_launch_says_so(plugin):
    reply = client_of("bob").post("/openhcs/execute/101/", {"preset": "no-such"})
    assert reply.status_code == 404
    assert "no-such" in one_line(reply)


def test_when_a_well_name_is_malformed_then_the_form_refuses_it(plugin):
    reply = client_of("bob").post(
        "/openhcs/execute/101/", {"preset": "x", "wells": "A01 ?!"}
    )
    assert reply.status_code == 400
    assert "?!" in one_line(reply)


@pytest.fixture
def notebook(exec_server):
    server, users = exec_server
    with connect(server.address, **users.connect_args("notebook")) as connection:
        yield connection


def test_when_alices_quota_is_full_then_the_launch_is_refused_in_one_line(
    plugin, notebook
):
    alice = client_of("alice")
    assert (
        alice.post("/openhcs/pipelines/", {"name": "hers", "code": CODE}).status_code
        == 302
    )
    blocker = notebook.submit(slow_pipeline(blurs=200), SMALL)  # holds the one slot
    queued = [run_for(plugin, "alice", CODE, "omero:105") for _ in range(2)]
    try:
        reply = alice.post("/openhcs/execute/105/", {"preset": "hers"})
        assert reply.status_code == 429
        line = one_line(reply)
        assert "max_queued_per_user" in line and "\n" not in line
    finally:
        for run in [blocker, *queued]:
            run.cancel()
