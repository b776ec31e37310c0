"""Features across wells, and per-well deltas, in headless Chromium (plain page).

``#core`` is the rendering core over a memory source, as an OMERO.web page
uses it: the user picks colour-by from grouped options, x and y features,
hovers a scatter point and clicks it. ``#widget`` is the anywidget adapter
over a stand-in model that records what it sends and lets the test deliver
custom messages as the kernel would: the view asks for a snapshot when it
opens, and later deltas change only their wells.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from viewer_page import open_page

pytestmark = pytest.mark.browser
# Mirrors PLOT in static/feature_plot.js (the mapping its header documents).
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 240, 180, 34, 8, 8, 22
MEASUREMENTS = [
    "area_mean",
    "area_median",
    "area_std",
    "cells_area_mean",
    "cells_count",
    "count",
    "fields_failing_qc",
]

PAGE = """<!doctype html>
<html><head><link rel="stylesheet" href="plate_viewer.css"></head>
<body><div id="core"></div><div id="widget"></div>
<script type="module">
import widget, { createPlateViewer, createMemorySource } from "./plate_viewer.js";
const spec = await (await fetch("spec.json")).json();
window.source = createMemorySource(spec);
window.core = createPlateViewer(document.getElementById("core"), window.source);
// The widget's model holds no per-well state: it comes by custom message.
const { status, values, errors, ...rest } = spec;
const state = { ...rest };
const handlers = {};
window.sent = [];
window.model = {
  get: (k) => state[k],
  set(k, v) { state[k] = v; for (const f of handlers[`change:${k}`] || []) f(); },
  save_changes() {},
  send(content) { window.sent.push(content); },
  on(e, f) { (handlers[e] ||= []).push(f); },
  off(e, f) { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
};
window.deliver = (content) => { for (const f of handlers["msg:custom"] || []) f(content, []); };
window.cleanup = widget.render({ model: window.model, el: document.getElementById("widget") });
window.ready = true;
</script></body></html>
"""


def plate() -> dict:
    rows, columns = ["A", "B", "C", "D"], [1, 2, 3, 4, 5, 6]
    wells = [f"{r}{c:02d}" for r in rows for c in columns]
    rng = np.random.default_rng(7)
    values = {}
    for i, well in enumerate(wells):
        row = {name: float(rng.integers(1, 500)) for name in MEASUREMENTS}
        row["count"] = float(10 + 3 * i)  # distinct, so points never overlap in x
        values[well] = row
    values["C02"]["area_mean"] = None  # a well with no value: no point
    return {
        "plate_name": "features",
        "rows": rows,
        "columns": columns,
        "wells": wells,
        "status": dict.fromkeys(wells, "done"),
        "errors": {},
        "values": values,
        "measurement": "status",
        "measurements": MEASUREMENTS,
        "selected_well": "A01",
        "channels": [],
        "image_meta": {},
    }


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    state = plate()
    (root / "index.html").write_text(PAGE)
    (root / "spec.json").write_text(json.dumps(state))
    with open_page(root, {"width": 1100, "height": 900}) as (tab, errors):
        yield tab, state, errors


def where(state: dict, well: str, x: str, y: str) -> tuple[float, float]:
    """The point of ``well`` in canvas pixels, by the documented mapping."""

    def span(name: str) -> tuple[float, float]:
        seen = [r[name] for r in state["values"].values() if r[name] is not None]
        return min(seen), max(seen)

    (x0, x1), (y0, y1) = span(x), span(y)
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    row = state["values"][well]
    return (
        LEFT + (row[x] - x0) / (x1 - x0) * width,
        TOP + height - (row[y] - y0) / (y1 - y0) * height,
    )


def pixel(tab, root: str, x: float, y: float) -> list[int]:
    return tab.evaluate(
        """([root, x, y]) => {
          const c = document.querySelector(`${root} canvas.ohnb-scatter`);
          return Array.from(c.getContext('2d').getImageData(Math.round(x), Math.round(y), 1, 1).data);
        }""",
        [root, x, y],
    )


def cell_rgb(tab, root: str, well: str) -> list[int]:
    text = tab.evaluate(
        """([root, well]) => getComputedStyle(
             document.querySelector(`${root} .ohnb-cell[data-well="${well}"]`)).backgroundColor""",
        [root, well],
    )
    return [int(float(v)) for v in text[text.index("(") + 1 : -1].split(",")[:3]]


def test_when_user_picks_features_then_hovering_and_clicking_a_point_selects_it(page):
    tab, state, errors = page
    groups = tab.evaluate(
        """() => [...document.querySelectorAll('#core select.ohnb-measurement optgroup')]
              .map((g) => [g.label, [...g.children].map((o) => o.value)])"""
    )
    assert groups == [
        ["objects", ["area_mean", "area_median", "area_std", "count"]],
        ["cells", ["cells_area_mean", "cells_count"]],
        ["well", ["fields_failing_qc"]],
    ]
    tab.select_option("#core select.ohnb-measurement", "cells_count")
    tab.select_option("#core select.ohnb-plot-x", "count")
    tab.select_option("#core select.ohnb-plot-y", "area_mean")
    assert tab.evaluate("() => [source.get('plot_x'), source.get('plot_y')]") == [
        "count",
        "area_mean",
    ]
    canvas = tab.locator("#core canvas.ohnb-scatter")
    assert canvas.get_attribute("data-points") == str(len(state["wells"]) - 1)
    x, y = where(state, "B05", "count", "area_mean")
    # The point is drawn in its plate-map cell's colour (viridis of cells_count).
    assert pixel(tab, "#core", x, y)[:3] == cell_rgb(tab, "#core", "B05")
    assert pixel(tab, "#core", x, y)[3] == 255
    canvas.hover(position={"x": x, "y": y})
    row = state["values"]["B05"]
    hover = tab.locator("#core .ohnb-plot-hover").inner_text()
    assert hover == f"B05: count {row['count']:g}, area_mean {row['area_mean']:g}"
    canvas.click(position={"x": x, "y": y})
    assert tab.evaluate("() => source.get('selected_well')") == "B05"
    assert tab.locator("#core .ohnb-well .ohnb-title").inner_text() == "B05"
    selected = tab.locator('#core .ohnb-cell[data-well="B05"]')
    assert "ohnb-selected" in selected.get_attribute("class")
    assert errors == []


def test_when_a_histogram_bar_holds_one_well_then_clicking_it_selects_that_well(
    page,
):
    tab, state, errors = page
    tab.select_option("#core select.ohnb-measurement", "area_std")
    values = {w: r["area_std"] for w, r in state["values"].items()}
    lo, hi = min(values.values()), max(values.values())
    width = (hi - lo) / 12  # BINS in histogram.js
    bins: dict[int, list[str]] = {}
    for well, v in values.items():
        bins.setdefault(min(11, int((v - lo) // width)), []).append(well)
    index, (well,) = next((i, w) for i, w in sorted(bins.items()) if len(w) == 1)
    assert tab.evaluate("() => source.get('selected_well')") != well
    tab.locator("#core .ohnb-bar-bin").nth(index).click()
    assert tab.evaluate("() => source.get('selected_well')") == well
    assert tab.locator("#core .ohnb-well .ohnb-title").inner_text() == well
    assert errors == []


def test_when_the_view_opens_then_it_asks_for_wells_and_deltas_fill_them(page):
    tab, state, errors = page
    assert tab.evaluate("() => window.sent") == [{"type": "ready"}]
    assert tab.locator("#widget .ohnb-cell").count() == len(state["wells"])
    empty = cell_rgb(tab, "#widget", "A01")  # nothing sent yet: no status colour
    snapshot = {
        "type": "wells",
        "full": True,
        "status": {"A01": "done", "A02": "queued"},
        "values": {"A01": {"count": 4.0}},
        "errors": {},
    }
    tab.evaluate("(m) => window.deliver(m)", snapshot)
    done = cell_rgb(tab, "#widget", "A01")
    assert done != empty
    queued = cell_rgb(tab, "#widget", "A02")
    delta = {
        "type": "wells",
        "full": False,
        "status": {"A02": "failed"},
        "values": {},
        "errors": {"A02": "ValueError: no nuclei"},
    }
    tab.evaluate("(m) => window.deliver(m)", delta)
    assert cell_rgb(tab, "#widget", "A02") not in (queued, done)
    assert cell_rgb(tab, "#widget", "A01") == done  # untouched by the delta
    title = tab.locator('#widget .ohnb-cell[data-well="A02"]').get_attribute("title")
    assert title == "A02: failed\nValueError: no nuclei"
    tab.evaluate(
        "(m) => window.deliver(m)",
        {**snapshot, "status": {"A02": "done"}, "values": {}},
    )
    assert cell_rgb(tab, "#widget", "A01") == empty  # a snapshot replaces all
    assert errors == []
