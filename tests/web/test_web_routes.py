"""Every route of the OMERO.web app through the real omeroweb settings and URLs.

Behind the app is a real openhcs-server with the OMERO double (see
conftest.py); the app acts with its front-end key and the logged-in user's
OMERO session, and the execution server decides what that user may do.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from web_client import client_of, needs_presets, one_line, run_for
from web_double import SESSIONS

from openhcs_nb import nuclei_count_pipeline


@pytest.fixture(scope="module")
def bobs_run(plugin):
    """One finished execution of bob's on plate 101 (two wells)."""
    run = run_for(
        plugin, "bob", nuclei_count_pipeline(), "omero:101", wells=["A01", "A02"]
    )
    table = run.result(timeout=120)
    assert (table.status == "done").all(), table
    return run


def test_when_not_logged_in_then_pages_redirect_to_login(plugin):
    reply = client_of("nobody").get("/openhcs/")
    assert reply.status_code == 302
    assert "/webclient/login/" in reply["Location"]


def test_when_bob_opens_the_status_page_then_it_shows_his_omero_user_and_runs(
    plugin, bobs_run
):
    reply = client_of("bob").get("/openhcs/")
    assert reply.status_code == 200
    text = reply.content.decode()
    assert "<strong>bob</strong>" in text
    info = plugin.get(SESSIONS["bob"]).server_info
    assert f"{len(info.catalogue)} functions in its catalogue" in text
    assert f"{info.workers} worker" in text
    assert bobs_run.id in text
    assert f"/openhcs/results/{bobs_run.id}/" in text


def test_when_alice_opens_the_status_page_then_bobs_runs_are_not_listed(
    plugin, bobs_run
):
    reply = client_of("alice").get("/openhcs/")
    assert reply.status_code == 200
    assert "<strong>alice</strong>" in reply.content.decode()
    assert bobs_run.id not in reply.content.decode()


def test_when_the_session_expired_then_the_page_says_so_in_one_line(plugin):
    reply = client_of("expired").get("/openhcs/")
    assert reply.status_code == 403
    line = one_line(reply)
    assert "\n" not in line and line
    assert "Traceback" not in reply.content.decode()


def test_when_bob_opens_his_results_page_then_it_loads_the_viewer(plugin, bobs_run):
    reply = client_of("bob").get(f"/openhcs/results/{bobs_run.id}/")
    assert reply.status_code == 200
    text = reply.content.decode()
    assert 'data-viewer-url="/openhcs/viewer.js"' in text
    assert f"/openhcs/results/{bobs_run.id}/state.json" in text
    assert "/static/omero_openhcs/results.js" in text
    assert "?show=plate-101" in text  # the written-back results, once done


def test_when_the_page_polls_the_state_then_it_gets_wells_and_layout(plugin, bobs_run):
    bob = client_of("bob")
    url = f"/openhcs/results/{bobs_run.id}/state.json"
    body = bob.get(url, {"layout": "1"}).json()
    assert body["changed"] is True
    assert body["status"] == {"A01": "done", "A02": "done"}
    assert body["ended"] is True and body["run_state"] == "done"
    assert body["progress"] == {"done": 2, "failed": 0, "total": 2}
    assert set(body["wells"]) >= {"A01", "A02", "B03"}  # the plate's own layout
    expected = {w: e.summary["count"] for w, e in bobs_run.wells.items()}
    assert {w: v["count"] for w, v in body["values"].items()} == expected
    again = bob.get(url, {"version": body["version"]}).json()
    assert again == {"changed": False, "version": body["version"]}


def test_when_a_well_is_fetched_then_its_planes_come_as_binary(plugin, bobs_run):
    reply = client_of("bob").get(f"/openhcs/results/{bobs_run.id}/well/A01/")
    assert reply.status_code == 200
    assert reply["Content-Type"] == "application/octet-stream"
    meta = json.loads(reply["X-OpenHCS-Meta"])
    previews = bobs_run.previews("A01")
    assert len(meta["planes"]) == len(previews) > 0
    size = meta["height"] * meta["width"]
    for plane in meta["planes"]:
        width = np.dtype(plane["dtype"]).itemsize
        assert plane["offset"] + size * width <= len(reply.content)
    assert {c["name"] for c in meta["channels"]} <= {p["name"] for p in meta["planes"]}


def test_when_a_well_has_no_result_then_the_fetch_says_so(plugin, bobs_run):
    reply = client_of("bob").get(f"/openhcs/results/{bobs_run.id}/well/B03/")
    assert reply.status_code == 404
    assert "B03" in reply.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/openhcs/results/{id}/",
        "/openhcs/results/{id}/state.json",
        "/openhcs/results/{id}/well/A01/",
    ],
)
def test_when_alice_asks_for_bobs_execution_then_it_is_unknown(plugin, bobs_run, path):
    reply = client_of("alice").get(path.format(id=bobs_run.id))
    assert reply.status_code == 404
    line = one_line(reply)
    assert bobs_run.id in line and "\n" not in line


def test_when_alice_cancels_bobs_execution_then_it_is_refused(plugin, bobs_run):
    reply = client_of("alice").post(f"/openhcs/results/{bobs_run.id}/cancel/")
    assert reply.status_code == 404
    assert bobs_run.id in one_line(reply)


def test_when_bob_cancels_his_queued_run_then_it_is_cancelled(plugin):
    run = run_for(plugin, "bob", nuclei_count_pipeline(), "omero:103")
    reply = client_of("bob").post(f"/openhcs/results/{run.id}/cancel/")
    assert reply.status_code == 302
    assert reply["Location"] == f"/openhcs/results/{run.id}/"
    assert run.wait(timeout=60)
    assert run.state in {"cancelled", "done"}  # it may have finished first
    assert plugin.get(SESSIONS["bob"]).status(run.id).state == run.state


def test_when_bob_opens_a_plate_he_cannot_read_then_one_line_refusal(plugin):
    reply = client_of("bob").get("/openhcs/execute/105/")
    assert reply.status_code == 403
    line = one_line(reply)
    assert "105" in line and "\n" not in line


def test_when_the_plate_does_not_exist_then_not_found(plugin):
    reply = client_of("bob").get("/openhcs/execute/999/")
    assert reply.status_code == 404
    assert "999" in one_line(reply)


@needs_presets
def test_when_the_plate_panel_loads_then_it_lists_the_plates_runs(plugin, bobs_run):
    reply = client_of("bob").get("/openhcs/plate/101/panel/")
    assert reply.status_code == 200
    text = reply.content.decode()
    assert f"/openhcs/results/{bobs_run.id}/" in text
    other = client_of("bob").get("/openhcs/plate/104/panel/").content.decode()
    assert bobs_run.id not in other


def test_when_open_with_names_a_plate_then_it_goes_to_its_launch_page(plugin):
    reply = client_of("bob").get("/openhcs/open_with/", {"plate": "101"})
    assert reply.status_code == 302
    assert reply["Location"] == "/openhcs/execute/101/"
    assert client_of("bob").get("/openhcs/open_with/").status_code == 400


def test_when_the_viewer_module_is_served_then_it_is_the_notebooks_core(plugin):
    from openhcs_nb.jupyter._viewer_esm import build_esm

    reply = client_of("bob").get("/openhcs/viewer.js")
    assert reply.status_code == 200
    assert reply["Content-Type"].startswith("text/javascript")
    assert reply.content.decode() == build_esm()
    assert "export function createPlateViewer" in reply.content.decode()
    css = client_of("bob").get("/openhcs/viewer.css")
    assert css.status_code == 200 and b".ohnb" in css.content


def test_when_webclient_is_configured_then_plugin_link_and_open_with_resolve(plugin):
    from django.conf import settings
    from django.template import Context, Template
    from django.urls import reverse

    assert "omero_openhcs" in settings.INSTALLED_APPS
    assert ["openhcs-nb", "omero_openhcs_index", {"title": "Run pipelines"}] in (
        settings.TOP_LINKS
    )
    names = [entry[1] for entry in settings.OPEN_WITH]
    assert "omero_openhcs_open_with" in names
    assert reverse("omero_openhcs_open_with") == "/openhcs/open_with/"
    plugin_entry = next(p for p in settings.RIGHT_PLUGINS if p[0] == "openhcs")
    source = "{% for p in plugins %}{% include p.1 %}{% endfor %}"
    html = Template(source).render(Context({"plugins": [plugin_entry]}))
    assert '$("#openhcs_tab").omeroweb_right_plugin' in html
    assert "/openhcs/plate/0/panel/" in html
    assert "supported_obj_types: ['plate']" in html


def test_when_a_post_has_no_csrf_token_then_it_is_forbidden(plugin, bobs_run):
    strict = client_of("bob", csrf=True)
    for path in (
        f"/openhcs/results/{bobs_run.id}/cancel/",
        "/openhcs/pipelines/",
        "/openhcs/pipelines/anything/delete/",
        "/openhcs/execute/101/",
    ):
        reply = strict.post(path, {"preset": "x", "name": "x", "code": "x"})
        assert reply.status_code == 403, path
        assert b"CSRF" in reply.content


def test_when_a_post_has_the_token_then_it_passes_the_csrf_check(plugin, bobs_run):
    strict = client_of("bob", csrf=True)
    page = strict.get(f"/openhcs/results/{bobs_run.id}/")
    token = page.cookies["csrftoken"].value
    reply = strict.post(
        f"/openhcs/results/{bobs_run.id}/cancel/", {"csrfmiddlewaretoken": token}
    )
    assert reply.status_code == 302  # cancelling a finished run changes nothing
    assert bobs_run.state == "done"


def test_when_a_page_is_asked_with_the_wrong_method_then_405(plugin, bobs_run):
    assert client_of("bob").post("/openhcs/").status_code == 405
    assert (
        client_of("bob").get(f"/openhcs/results/{bobs_run.id}/cancel/").status_code
        == 405
    )
