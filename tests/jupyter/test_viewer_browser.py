"""The plate viewer's JS in headless Chromium, in a plain page (no Jupyter).

The page uses the rendering core with ``createMemorySource``, as an OMERO.web
page would, and the anywidget adapter with a minimal model; pixels are read
back from the canvas and compared with the Python reference compositor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from viewer_page import open_page

from openhcs_nb.jupyter._images import (
    ChannelSetting,
    composite_rgb,
    pack_planes,
    unpack_planes,
)

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html><head><link rel="stylesheet" href="plate_viewer.css"></head>
<body><div id="core"></div><div id="widget"></div>
<script type="module">
import widget, { createPlateViewer, createMemorySource } from "./plate_viewer.js";
const spec = await (await fetch("spec.json")).json();
const data = new DataView(await (await fetch("data.bin")).arrayBuffer());
window.source = createMemorySource({ ...spec, image_data: data });
window.core = createPlateViewer(document.getElementById("core"), window.source);
const state = { ...spec, image_data: data };
const handlers = {};
window.model = {
  saved: 0,
  get: (k) => state[k],
  set(k, v) { state[k] = v; for (const f of handlers[`change:${k}`] || []) f(); },
  save_changes() { this.saved += 1; },
  on(e, f) { (handlers[e] ||= []).push(f); },
  off(e, f) { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
};
window.cleanup = widget.render({ model: window.model,
                                 el: document.getElementById("widget") });
window.ready = true;
</script></body></html>
"""


def scene() -> tuple[dict, bytes]:
    rng = np.random.default_rng(5)
    labels = np.zeros((24, 30), np.int32)
    labels[2:10, 3:12] = 1
    labels[12:22, 15:28] = 2
    images = {
        "image/DAPI": rng.integers(0, 2000, (24, 30)).astype(np.uint16),
        "image/GFP": rng.integers(0, 250, (24, 30)).astype(np.uint8),
        "labels/nuclei": labels,
    }
    data, meta = pack_planes(images)
    state = {
        "plate_name": "demo",
        "rows": ["A", "B"],
        "columns": [1, 2, 3],
        "wells": ["A01", "A02", "A03", "B01", "B02", "B03"],
        "fields": 2,
        "status": {"A01": "done", "A02": "failed", "A03": "queued"},
        "errors": {"A02": "ValueError: no nuclei"},
        "values": {"A01": {"count": 10.0}, "B01": {"count": 30.0}},
        "measurement": "status",
        "measurements": ["count"],
        "selected_well": "A01",
        "field": 0,
        "show_labels": True,
        "message": "",
        "run_state": "running",
        "channels": [
            {
                "name": "DAPI",
                "color": "#3f7fff",
                "visible": True,
                "min": 50,
                "max": 1800,
            },
            {"name": "GFP", "color": "#00ff00", "visible": True, "min": 0, "max": 200},
        ],
        "image_meta": {**meta, "well": "A01", "field": 0},
    }
    return state, data


def reference(
    state: dict, data: bytes, show_labels: bool, label_mode: str = "outline"
) -> np.ndarray:
    planes = unpack_planes(data, state["image_meta"])
    settings = [
        (planes[c["name"]], ChannelSetting(c["color"], c["min"], c["max"]))
        for c in state["channels"]
    ]
    labels = [planes["labels/nuclei"]] if show_labels else []
    return composite_rgb(settings, labels, label_mode)


@pytest.fixture
def page(tmp_path: Path):
    state, data = scene()
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "spec.json").write_text(json.dumps(state))
    (tmp_path / "data.bin").write_bytes(data)
    with open_page(tmp_path) as (tab, errors):
        yield tab, state, data, errors


def canvas_rgb(tab, root: str) -> np.ndarray:
    pixels = tab.evaluate(
        """(root) => {
          const c = document.querySelector(`${root} canvas.ohnb-base`);
          return [c.width, c.height,
                  Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data)];
        }""",
        root,
    )
    w, h, flat = pixels
    return np.array(flat, np.uint8).reshape(h, w, 4)[..., :3]


def test_when_page_loads_then_grid_colours_and_canvas_match_the_state(page):
    tab, state, data, errors = page
    assert tab.locator("#core .ohnb-cell").count() == 6
    colors = tab.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#core .ohnb-cell')]
              .map((c) => [c.dataset.well, getComputedStyle(c).backgroundColor]))"""
    )
    assert colors["A01"] == "rgb(58, 167, 109)"  # done
    assert colors["A02"] == "rgb(214, 69, 69)"  # failed
    title = tab.get_attribute("#core .ohnb-cell[data-well='A02']", "title")
    assert "ValueError: no nuclei" in title
    assert np.array_equal(canvas_rgb(tab, "#core"), reference(state, data, True))
    assert errors == []


def test_when_user_clicks_and_toggles_then_the_source_hears_it(page):
    tab, state, data, errors = page
    tab.click("#core .ohnb-cell[data-well='B02']")
    assert tab.evaluate("window.source.get('selected_well')") == "B02"
    tab.select_option("#core select.ohnb-measurement", "count")
    assert tab.evaluate("window.source.get('measurement')") == "count"
    b01 = tab.evaluate(
        """() => getComputedStyle(document.querySelector(
              "#core .ohnb-cell[data-well='B01']")).backgroundColor"""
    )
    assert b01 == "rgb(253, 231, 37)"  # the top of viridis: the largest count
    tab.uncheck("#core .ohnb-toggle input")
    assert tab.evaluate("window.source.get('show_labels')") is False
    assert np.array_equal(canvas_rgb(tab, "#core"), reference(state, data, False))
    assert errors == []


def test_when_widget_adapter_renders_then_changes_are_saved_and_cleanup_removes_it(
    page,
):
    tab, state, data, errors = page
    assert np.array_equal(canvas_rgb(tab, "#widget"), reference(state, data, True))
    tab.click("#widget .ohnb-cell[data-well='A03']")
    assert tab.evaluate("window.model.get('selected_well')") == "A03"
    assert tab.evaluate("window.model.saved") == 1
    tab.evaluate("window.cleanup()")
    assert tab.locator("#widget .ohnb-root").count() == 0
    assert errors == []


def test_when_wells_run_or_are_cancelled_then_colours_titles_and_legend_say_so(page):
    tab, state, data, errors = page
    tab.evaluate(
        """() => window.source.update({status: {A01: "done", A02: "running",
                 A03: "cancelled", B01: "cancelled", B02: "queued"}})"""
    )
    cells = tab.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#core .ohnb-cell')]
              .map((c) => [c.dataset.well, [getComputedStyle(c).backgroundColor,
                                            c.title]]))"""
    )
    colors = {well: color for well, (color, _) in cells.items()}
    assert colors["A02"] == "rgb(242, 193, 78)"  # running
    assert colors["A03"] == colors["B01"] == "rgb(125, 107, 145)"  # cancelled
    assert len({colors["A01"], colors["A02"], colors["A03"], colors["B02"]}) == 4
    assert cells["A03"][1].startswith("A03: cancelled")
    legend = tab.inner_text("#core .ohnb-legend")
    assert "running 1" in legend
    assert "cancelled 2" in legend
    assert "queued 1" in legend
    assert errors == []


def test_when_the_host_theme_is_dark_then_text_and_background_follow_it(page):
    tab, state, data, errors = page
    tab.evaluate(
        """() => { const s = document.body.style;
                   s.setProperty('--jp-ui-font-color1', 'rgb(230, 230, 230)');
                   s.setProperty('--jp-ui-font-color2', 'rgb(190, 190, 190)');
                   s.setProperty('--jp-layout-color1', 'rgb(17, 17, 17)'); }"""
    )
    look = tab.evaluate(
        """() => { const root = document.querySelector('#core .ohnb-root');
                   const head = root.querySelector('.ohnb-head');
                   return [getComputedStyle(root).color,
                           getComputedStyle(root).backgroundColor,
                           getComputedStyle(head).color]; }"""
    )
    assert look == ["rgb(230, 230, 230)", "rgb(17, 17, 17)", "rgb(190, 190, 190)"]
    assert errors == []


def test_when_a_contrast_slider_moves_then_its_numbers_follow(page):
    tab, state, data, errors = page
    limits = tab.locator("#core .ohnb-limits")
    assert limits.all_inner_texts() == ["50\u20131800", "0\u2013200"]
    tab.evaluate(
        """() => { const s = document.querySelector('#core .ohnb-slider');
                   s.value = '400'; s.dispatchEvent(new Event('input')); }"""
    )
    assert limits.first.inner_text() == "400\u20131800"
    assert errors == []


def test_when_labels_are_filled_then_pixels_match_the_reference_fill(page):
    tab, state, data, errors = page
    outline = reference(state, data, True)
    tab.select_option("#core select.ohnb-label-mode", "filled")
    assert tab.evaluate("window.source.get('label_mode')") == "filled"
    filled = reference(state, data, True, "filled")
    shown = canvas_rgb(tab, "#core")
    assert np.array_equal(shown, filled)
    assert not np.array_equal(shown, outline)
    # inside a cell, away from its outline, the fill tints the channels
    plain = reference(state, data, False)
    assert not np.array_equal(shown[5, 6], plain[5, 6])
    assert np.array_equal(shown[0, 0], plain[0, 0])  # no label there
    assert errors == []
