"""Object inspection in headless Chromium: hover, pin and clear, on a real run.

A real server runs the nuclei pipeline on one well. The page runs the viewer
core with a minimal model whose ``send`` goes to the kernel's real servers
(the viewer's :class:`ObjectServer` over ``Execution.objects`` and its
:class:`TileServer` over the execution), through a function the page calls
(``window.kernel``); ``window.holdTiles`` keeps tiles back so the preview's
labels answer first. The panel's values are compared with the objects table
the run wrote to disk.
"""

from __future__ import annotations

import base64
import json
import queue
from pathlib import Path

import numpy as np
import pytest
from viewer_page import open_page

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import connect
from openhcs_nb.jupyter._images import pack_planes
from openhcs_nb.jupyter._viewer_objects import NO_MEASUREMENTS, ObjectServer
from openhcs_nb.jupyter._viewer_state import channel_settings
from openhcs_nb.jupyter._viewer_tiles import TileServer
from openhcs_nb.results.store import ResultsStore

pytestmark = pytest.mark.browser
SMALL = "small.ome.zarr"
WELL = "A01"
SHOT = Path(__file__).parents[2] / "docs/images/viewer-objects.png"
IDS = {"well", "site", "t", "z", "object_set", "label"}

PAGE = """<!doctype html>
<html><head><link rel="stylesheet" href="plate_viewer.css"></head>
<body style="width: 900px"><div id="widget"></div>
<script type="module">
import { createPlateViewer, modelSource } from "./plate_viewer.js";
const spec = await (await fetch("spec.json")).json();
const data = new DataView(await (await fetch("data.bin")).arrayBuffer());
const state = { ...spec, image_data: data };
const handlers = {};
const emit = (e, ...a) => { for (const f of handlers[e] || []) f(...a); };
const bytes = (text) => new DataView(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer);
window.holdTiles = false;
window.held = [];
window.sent = [];
window.release = () => { const h = window.held; window.held = []; for (const r of h) emit("msg:custom", ...r); };
window.model = {
  get: (k) => state[k],
  set(k, v) { state[k] = v; emit(`change:${k}`); },
  save_changes() {},
  on(e, f) { (handlers[e] ||= []).push(f); },
  off(e, f) { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
  send(msg) {
    window.sent.push(msg);
    window.kernel(msg).then((r) => {
      if (!r) return;
      const reply = [r[0], r[1].map(bytes)];
      if (msg.type === "tile" && window.holdTiles) window.held.push(reply);
      else emit("msg:custom", ...reply);
    });
  },
};
window.start = () => {
  window.core = createPlateViewer(document.getElementById("widget"), modelSource(window.model));
};
window.ready = true;
</script></body></html>
"""


class Kernel:
    """The kernel side of the page: real servers, replies handed back by id."""

    def __init__(self, execution) -> None:
        self.replies: dict[object, queue.Queue] = {}
        self.objects = ObjectServer(execution.objects, self._reply)
        self.tiles = TileServer(execution, self._reply)

    def _reply(self, content: dict, buffers: list[bytes]) -> None:
        self.replies.setdefault(content.get("id"), queue.Queue()).put(
            (content, buffers)
        )

    def __call__(self, msg: dict) -> list | None:
        """Answer one page message (on Playwright's thread); None: no reply."""
        if not (self.objects.handle(msg) or self.tiles.handle(msg)):
            return None
        if msg["type"] == "cancel":
            return None
        box = self.replies.setdefault(msg.get("id"), queue.Queue())
        content, buffers = box.get(timeout=60)
        return [content, [base64.b64encode(bytes(b)).decode() for b in buffers]]

    def close(self) -> None:
        self.objects.close()
        self.tiles.close()


@pytest.fixture(scope="module")
def run(demo_server):
    """A finished nuclei run of one well, with 2x downsampled previews."""
    conn = connect(demo_server.address, timeout=10.0)
    execution = conn.submit(
        nuclei_count_pipeline(), SMALL, wells=[WELL], preview_size=128
    )
    assert execution.wait(120)
    store = ResultsStore(demo_server.results_root / execution.id)
    table = store.load().objects
    table = table[(table["well"] == WELL) & (table["site"] == 0)]
    yield execution, execution.previews(WELL), store.read_labels(WELL)["nuclei"], table
    conn.close()


@pytest.fixture(scope="module")
def page(run, tmp_path_factory):
    execution, previews, full_labels, table = run
    root = tmp_path_factory.mktemp("objects")
    data, meta = pack_planes(previews)
    spec = {
        "plate_name": "small",
        "rows": ["A"],
        "columns": [1],
        "wells": [WELL],
        "fields": 2,
        "status": {WELL: "done"},
        "errors": {},
        "values": {},
        "measurement": "status",
        "measurements": [],
        "selected_well": WELL,
        "field": 0,
        "show_labels": True,
        "label_mode": "outline",
        "message": "",
        "run_state": "done",
        "pixel_size": 0,
        "channels": channel_settings([], data, meta),
        "image_meta": {**meta, "well": WELL, "field": 0, "serial": 1},
    }
    (root / "index.html").write_text(PAGE)
    (root / "spec.json").write_text(json.dumps(spec))
    (root / "data.bin").write_bytes(data)
    kernel = Kernel(execution)
    with open_page(root, {"width": 1000, "height": 900}) as (tab, errors):
        tab.expose_function("kernel", kernel)
        tab.evaluate("() => { window.holdTiles = true; window.start(); }")
        yield tab, previews, full_labels, table, kernel, errors
    kernel.close()


def interior(labels: np.ndarray, margin: int = 2) -> dict[int, tuple[int, int]]:
    """One (y, x) per label whose square of ``margin`` around is all that label."""
    out: dict[int, tuple[int, int]] = {}
    h, w = labels.shape
    for y in range(margin, h - margin):
        for x in range(margin, w - margin):
            v = int(labels[y, x])
            patch = labels[y - margin : y + margin + 1, x - margin : x + margin + 1]
            if v not in out and (patch == v).all():
                out[v] = (y, x)
    return out


def view(tab) -> dict:
    return tab.evaluate("() => window.core.view()")


def canvas_px(tab, full_x: float, full_y: float) -> tuple[int, int]:
    v = view(tab)
    return int((full_x - v["ox"]) * v["scale"]), int((full_y - v["oy"]) * v["scale"])


def hover(tab, full_x: float, full_y: float, click: bool = False) -> None:
    """Move (and click) the mouse over full-resolution pixel (x, y)."""
    cx, cy = canvas_px(tab, full_x, full_y)
    box = tab.evaluate(
        """() => { const c = document.querySelector('.ohnb-view canvas');
          const r = c.getBoundingClientRect();
          return [r.left, r.top, r.width / c.width, r.height / c.height]; }"""
    )
    x, y = box[0] + (cx + 0.5) * box[2], box[1] + (cy + 0.5) * box[3]
    tab.mouse.move(x, y)
    if click:
        tab.mouse.click(x, y)


def pixel(tab, full_x: float, full_y: float) -> tuple[int, int, int]:
    cx, cy = canvas_px(tab, full_x, full_y)
    return tuple(
        tab.evaluate(
            """([x, y]) => Array.from(document.querySelector('.ohnb-view canvas')
                 .getContext('2d').getImageData(x, y, 1, 1).data).slice(0, 3)""",
            [cx, cy],
        )
    )


def panel(tab) -> dict:
    return tab.evaluate(
        """() => { const p = document.querySelector('.ohnb-inspect');
          return { hidden: p.hidden, objects: p.dataset.objects,
            heads: [...p.querySelectorAll('.ohnb-object-head')].map((e) => e.textContent),
            notes: [...p.querySelectorAll('.ohnb-object-note')].map((e) => e.textContent),
            rows: [...p.querySelectorAll('tr')].map((r) =>
              [r.dataset.column, r.dataset.value, r.querySelector('td').textContent]) }; }"""
    )


def wait_panel(tab, objects: str, rows: bool = True) -> dict:
    tab.wait_for_function(
        """([want, rows]) => { const p = document.querySelector('.ohnb-inspect');
          return p && p.dataset.objects === want
            && (!rows || p.querySelectorAll('tr').length > 0); }""",
        arg=[objects, rows],
        timeout=30000,
    )
    return panel(tab)


def assert_row_shown(shown: dict, table, label: int) -> None:
    """The panel lists exactly that object's measured columns, with its values."""
    (row,) = table[
        (table["object_set"] == "nuclei") & (table["label"] == label)
    ].to_dict("records")
    want = [c for c in table.columns if c not in IDS and not _missing(row[c])]
    assert [c for c, _, _ in shown["rows"]] == want
    for column, value, text in shown["rows"]:
        assert float(value) == pytest.approx(float(row[column]), rel=1e-12), column
        assert text  # formatted for reading
    area = next(text for c, _, text in shown["rows"] if c == "area")
    assert area == f"{int(row['area'])} px²"
    assert shown["heads"][0].startswith(f"nuclei {label}")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def test_when_user_hovers_clicks_and_clears_then_panel_and_highlight_follow(page):
    tab, previews, full_labels, table, _kernel, errors = page
    tab.wait_for_function(
        "() => window.sent.some((m) => m.type === 'objects')", timeout=30000
    )
    small = previews["labels/nuclei"]  # every 2nd pixel of the full labels
    step = full_labels.shape[1] // small.shape[1]
    spots = interior(np.asarray(small))
    background = spots.pop(0)
    (first, (py, px)), (second, (qy, qx)) = list(spots.items())[:2]
    fx, fy = px * step + 0.5, py * step + 0.5  # the preview samples these pixels
    other = (qx * step + 0.5, qy * step + 0.5)
    bx, by = background[1] * step + 0.5, background[0] * step + 0.5

    hover(tab, bx, by)
    before, other_before = pixel(tab, fx, fy), pixel(tab, *other)
    hover(tab, fx, fy)
    shown = wait_panel(tab, f"nuclei:{first}")
    assert_row_shown(shown, table, first)
    lit = pixel(tab, fx, fy)
    assert lit != before and all(a >= b for a, b in zip(lit, before, strict=True))
    assert pixel(tab, *other) == other_before  # only the hovered object lights

    hover(tab, fx, fy, click=True)  # pin it: the panel stays as the mouse moves
    hover(tab, *other)
    assert wait_panel(tab, f"nuclei:{first}")["heads"][0].endswith("Esc clears)")
    assert pixel(tab, *other) == other_before

    hover(tab, bx, by, click=True)  # a click on background clears
    cleared = wait_panel(tab, "", rows=False)
    assert cleared["hidden"] and cleared["rows"] == []
    assert pixel(tab, fx, fy) == before

    hover(tab, *other, click=True)
    assert_row_shown(wait_panel(tab, f"nuclei:{second}"), table, second)
    tab.keyboard.press("Escape")
    assert wait_panel(tab, "", rows=False)["hidden"]
    assert errors == []


def test_when_full_resolution_tiles_land_then_their_ids_are_inspected(page):
    tab, _previews, full_labels, table, _kernel, errors = page
    tab.evaluate("() => { window.holdTiles = false; window.release(); }")
    tab.wait_for_function(
        "() => { const v = window.core.view(); return v.pending === 0 && v.tiles > 0; }",
        timeout=30000,
    )
    assert view(tab)["level"] == 0
    # an odd pixel: the preview never sampled it, only a level-0 tile has it
    spots = {
        v: (y, x)
        for v, (y, x) in interior(np.asarray(full_labels), margin=3).items()
        if v and (y % 2 or x % 2)
    }
    label, (y, x) = next(iter(spots.items()))
    hover(tab, x + 0.5, y + 0.5)
    assert_row_shown(wait_panel(tab, f"nuclei:{label}"), table, label)
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    tab.locator("#widget .ohnb-root").screenshot(path=str(SHOT))
    hover(tab, x + 0.5, y + 0.5, click=True)
    tab.keyboard.press("Escape")
    assert wait_panel(tab, "", rows=False)["hidden"]
    assert errors == []


def test_when_the_view_has_no_measurements_then_the_panel_says_so(page):
    tab, previews, _full, _table, kernel, errors = page
    kernel.objects = ObjectServer(None, kernel._reply)  # a fetch_well-only viewer
    tab.evaluate(  # tiles held: the preview's labels answer the hover
        """() => { window.holdTiles = true; const m = window.model; m.set('field', 1);
          m.set('image_meta', {...m.get('image_meta'), field: 1, serial: 2}); }"""
    )
    tab.wait_for_function(
        "() => window.sent.some((m) => m.type === 'objects' && m.field === 1)",
        timeout=30000,
    )
    small = np.asarray(previews["labels/nuclei"])
    spots = interior(small)
    spots.pop(0)
    label, (py, px) = next(iter(spots.items()))
    step = 2
    hover(tab, px * step + 0.5, py * step + 0.5)
    shown = wait_panel(tab, f"nuclei:{label}", rows=False)
    tab.wait_for_function(
        f"""() => [...document.querySelectorAll('.ohnb-object-note')]
              .some((e) => e.textContent === {json.dumps(NO_MEASUREMENTS)})""",
        timeout=30000,
    )
    assert shown["rows"] == []
    assert errors == []
