"""The results page and the plate panel in headless Chromium, against a real server.

The page is OMERO.web's Django app served on loopback; behind it, a real
openhcs-server with the OMERO double. The viewer on the page is the
notebook's own rendering core, fed by the app's relay.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from client_helpers import SMALL, slow_pipeline
from lab import ARGS
from live_server import live_server
from web_client import needs_presets, run_for
from web_double import COOKIE, SESSIONS

from openhcs_nb import connect, nuclei_count_pipeline

CHROMIUM = shutil.which("chromium")
SCREENSHOT = (
    Path(__file__).resolve().parents[2] / "docs" / "images" / "omero-web-results.png"
)
SECOND = 1000


@pytest.fixture(scope="module")
def browser_page(plugin):
    """``(base url, tab, errors)``: Chromium logged in as bob on the live app."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with live_server() as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 820})
        context.add_cookies([{"name": COOKIE, "value": "bob", "url": base}])
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield base, tab, errors
        browser.close()


def done_wells(tab) -> list[str]:
    """Wells the plate map shows as done (from each cell's tooltip)."""
    return tab.eval_on_selector_all(
        ".ohnb-cell[data-well]",
        "cells => cells.filter(c => c.title.split('\\n')[0].endsWith(': done'))"
        ".map(c => c.dataset.well)",
    )


@pytest.fixture
def notebook(exec_server):
    """Another user's notebook connection (a plain key, no OMERO)."""
    server, users = exec_server
    with connect(server.address, **users.connect_args("notebook")) as connection:
        yield connection


def test_when_a_run_is_open_then_its_wells_fill_in_live(plugin, browser_page, notebook):
    base, tab, errors = browser_page
    # The server runs one execution at a time: bob's waits behind this one.
    blocker = notebook.submit(slow_pipeline(blurs=200), SMALL)
    run = run_for(plugin, "bob", nuclei_count_pipeline(), "omero:101")
    try:
        tab.goto(f"{base}/openhcs/results/{run.id}/")
        tab.wait_for_selector(".ohnb-cell[data-well='A01']", timeout=30 * SECOND)
        first = done_wells(tab)
        assert run.state == "queued" or len(first) < 3, "the run started too late"
        blocker.cancel()
        tab.wait_for_function("window.ohcsEnded === true", timeout=120 * SECOND)
    finally:
        blocker.cancel()
    assert sorted(done_wells(tab)) == ["A01", "A02", "B03"]
    assert first != done_wells(tab), "the wells filled in without a reload"
    assert "done" in tab.inner_text("#ohcs-progress")
    tab.wait_for_function(
        "window.ohcsSource.get('image_meta').planes?.length > 0", timeout=30 * SECOND
    )
    lit = tab.evaluate(
        """() => {
          const canvas = document.querySelector('#ohcs-viewer canvas');
          const ctx = canvas.getContext('2d');
          const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
          let n = 0;
          for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 0) n++;
          return n;
        }"""
    )
    assert lit > 0, "the well view drew the selected well's preview"
    assert tab.is_visible("#ohcs-written")
    assert errors == []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOT), full_page=True)


@needs_presets
def test_when_a_preset_is_run_from_the_plate_panel_then_its_results_page_opens(
    plugin, browser_page
):
    base, tab, errors = browser_page
    connection = plugin.get(SESSIONS["bob"])
    connection.save_preset(
        "panel-nuclei",
        nuclei_count_pipeline().to_code(),
        description="nuclei",
        replace=True,
    )
    tab.goto(f"{base}/openhcs/plate/101/panel/")
    tab.select_option(".ohcs-panel-run select[name=preset]", "panel-nuclei")
    tab.fill(".ohcs-panel-run input[name=wells]", "A01")
    with tab.expect_navigation(timeout=30 * SECOND):
        tab.click(".ohcs-panel-run button[type=submit]")
    assert "/openhcs/results/" in tab.url
    execution_id = tab.url.rstrip("/").rsplit("/", 1)[-1]
    tab.wait_for_function("window.ohcsEnded === true", timeout=120 * SECOND)
    assert done_wells(tab) == ["A01"], tab.inner_text("#ohcs-progress")
    info = connection.status(execution_id)
    assert info.plate == "omero:101" and info.label == "panel-nuclei"
    assert errors == []
