"""The zoomable well view in headless Chromium: wheel, drag, tiles, stale replies.

A plain page runs the anywidget adapter with a minimal model whose ``send``
the page answers from tiles Python packed beforehand (``f<field>_<level>_<ty>_<tx>``
files, the same packing the tile server sends); ``window.hold`` delays replies.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from viewer_page import open_page

from openhcs_nb.jupyter._images import pack_planes

pytestmark = pytest.mark.browser
H, W, TILE, LEVELS = 600, 700, 256, 3
SHOT = Path(__file__).parents[2] / "docs/images/viewer-zoom.png"

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
window.hold = false;
window.held = [];
window.sent = [];
async function answer(msg) {
  const f = msg.field;
  if (msg.type === "pyramid") {
    const levels = await (await fetch(`pyramid.json`)).json();
    return [{ ...msg, levels, tile: 256 }, []];
  }
  const name = `f${f}_${msg.level}_${msg.ty}_${msg.tx}`;
  const meta = await (await fetch(`${name}.json`)).json();
  const buf = new DataView(await (await fetch(`${name}.bin`)).arrayBuffer());
  return [{ ...msg, meta }, [buf]];
}
window.release = () => { const h = window.held; window.held = [];
                         for (const r of h) emit("msg:custom", ...r); };
window.model = {
  get: (k) => state[k],
  set(k, v) { state[k] = v; emit(`change:${k}`); },
  save_changes() {},
  on(e, f) { (handlers[e] ||= []).push(f); },
  off(e, f) { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
  send(msg) {
    window.sent.push(msg);
    if (msg.type === "cancel") return;
    answer(msg).then((r) => window.hold ? window.held.push(r) : emit("msg:custom", ...r));
  },
};
// what the anywidget adapter does, keeping the core's handle to read its view
window.core = createPlateViewer(document.getElementById("widget"), modelSource(window.model));
window.viewState = () => window.core.view();
window.ready = true;
</script></body></html>
"""


def full_image(field: int) -> np.ndarray:
    rng = np.random.default_rng(11 + field)
    return rng.integers(0, 4000, (H, W)).astype(np.uint16)  # detail at every pixel


def write_site(root: Path) -> dict:
    pyramid = {}
    for field in (0, 1):
        full = full_image(field)
        levels = [full[:: 2**i, :: 2**i] for i in range(LEVELS)]
        pyramid = {"image/DAPI": [list(a.shape) for a in levels]}
        for level, a in enumerate(levels):
            for ty in range(-(-a.shape[0] // TILE)):
                for tx in range(-(-a.shape[1] // TILE)):
                    crop = a[ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE]
                    data, meta = pack_planes({"image/DAPI": crop})
                    (root / f"f{field}_{level}_{ty}_{tx}.bin").write_bytes(data)
                    (root / f"f{field}_{level}_{ty}_{tx}.json").write_text(
                        json.dumps(meta)
                    )
    (root / "pyramid.json").write_text(json.dumps(pyramid))
    data, meta = pack_planes({"image/DAPI": full_image(0)[::4, ::4]})  # the preview
    (root / "data.bin").write_bytes(data)
    spec = {
        "plate_name": "demo",
        "rows": ["A"],
        "columns": [1],
        "wells": ["A01"],
        "fields": 2,
        "status": {"A01": "done"},
        "errors": {},
        "values": {},
        "measurement": "status",
        "measurements": [],
        "selected_well": "A01",
        "field": 0,
        "show_labels": True,
        "message": "",
        "run_state": "done",
        "pixel_size": 0.5,
        "channels": [
            {"name": "DAPI", "color": "#ffffff", "visible": True, "min": 0, "max": 4000}
        ],
        "image_meta": {**meta, "well": "A01", "field": 0, "serial": 1},
    }
    (root / "spec.json").write_text(json.dumps(spec))
    return spec


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    (root / "index.html").write_text(PAGE)
    spec = write_site(root)
    with open_page(root, {"width": 1000, "height": 900}) as (tab, errors):
        yield tab, spec, errors


def view_state(tab) -> dict:
    return tab.evaluate("() => window.viewState()")


def shown(tab) -> tuple[dict, np.ndarray]:
    out = tab.evaluate(
        """() => { const c = document.querySelector('.ohnb-view canvas');
          const r = c.getBoundingClientRect();
          return [c.width, c.height, r.left, r.top,
                  Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }"""
    )
    w, h, left, top, flat = out
    return {"left": left, "top": top, "w": w, "h": h}, np.array(flat, np.uint8).reshape(
        h, w, 4
    )


def expected_grey(value: int) -> int:
    return int(np.clip(round(value / 4000 * 255), 0, 255))


def assert_matches_full(pixels: np.ndarray, view: dict, full: np.ndarray) -> None:
    """Screen points at full-res pixel centres show that pixel's grey (nearest)."""
    scale, ox, oy = view["scale"], view["ox"], view["oy"]
    fx0, fy0 = int(np.ceil(ox)) + 1, int(np.ceil(oy)) + 1
    checked = 0
    for dy in range(0, 12, 3):
        for dx in range(0, 12, 3):
            fx, fy = fx0 + dx, fy0 + dy
            sx, sy = int((fx + 0.5 - ox) * scale), int((fy + 0.5 - oy) * scale)
            if sx >= pixels.shape[1] or sy >= pixels.shape[0]:
                continue
            got = int(pixels[sy, sx, 0])
            assert abs(got - expected_grey(int(full[fy, fx]))) <= 1, (fx, fy, got)
            checked += 1
    assert checked >= 9


def zoom_to_tiles(tab, box: dict, clicks: int, at: tuple[float, float]) -> dict:
    tab.mouse.move(box["left"] + at[0], box["top"] + at[1])
    for _ in range(clicks):
        tab.mouse.wheel(0, -100)
    tab.wait_for_function(
        "() => { const v = window.viewState(); return v.pending === 0 && v.tiles > 0; }",
        timeout=20000,
    )
    return view_state(tab)


def test_when_user_wheels_and_drags_then_sharp_full_resolution_tiles_draw(page):
    tab, spec, errors = page
    box, _ = shown(tab)
    view = zoom_to_tiles(tab, box, 6, (200, 150))
    assert view["scale"] > 2  # past 1:1: sharp pixels, level 0 tiles
    assert view["level"] == 0
    _, pixels = shown(tab)
    full = full_image(0)
    assert_matches_full(pixels, view, full)
    # the preview (every 4th pixel) cannot show this: neighbours differ
    fx, fy = int(np.ceil(view["ox"])) + 1, int(np.ceil(view["oy"])) + 1
    assert full[fy, fx] != full[fy, fx + 1]
    requested = [m for m in tab.evaluate("window.sent") if m["type"] == "tile"]
    assert all(m["level"] == 0 for m in requested[-4:])
    # drag to pan: the view moves by the drag over the scale, pixels follow
    tab.mouse.move(box["left"] + 300, box["top"] + 200)
    tab.mouse.down()
    tab.mouse.move(box["left"] + 200, box["top"] + 120, steps=4)
    tab.mouse.up()
    tab.wait_for_function("() => window.viewState().pending === 0", timeout=20000)
    moved = view_state(tab)
    assert moved["ox"] == pytest.approx(view["ox"] + 100 / view["scale"], abs=0.01)
    assert moved["oy"] == pytest.approx(view["oy"] + 80 / view["scale"], abs=0.01)
    _, pixels = shown(tab)
    assert_matches_full(pixels, moved, full)
    readout = tab.inner_text(".ohnb-readout")
    assert readout.startswith("x ") and "DAPI" in readout
    scalebar = tab.inner_text(".ohnb-scalebar")
    assert scalebar.endswith("µm")
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    tab.locator("#widget .ohnb-root").screenshot(path=str(SHOT))
    tab.keyboard.press("0")
    assert view_state(tab)["ox"] == 0
    assert errors == []


SET_FIELD = """(field) => { const m = window.model; m.set('field', field);
  m.set('image_meta', {...m.get('image_meta'), field, serial: 10 + field}); }"""
HELD_TILES = """(field) => window.held.filter(([c]) => c.type === 'tile' && c.field === field)
  .length === window.sent.filter((m) => m.type === 'tile' && m.field === field).length
  && window.held.length > 0"""


def test_when_a_reply_comes_after_the_field_changed_then_it_never_draws(page):
    tab, spec, errors = page
    box, _ = shown(tab)
    tab.evaluate("() => { window.hold = true; window.sent = []; }")
    tab.evaluate(SET_FIELD, 1)
    tab.wait_for_function("() => window.held.length === 1", timeout=20000)
    tab.evaluate("() => window.release()")  # field 1's pyramid: its tiles are asked for
    tab.wait_for_function(HELD_TILES, arg=1, timeout=20000)
    stale = tab.evaluate("window.held.length")
    assert stale > 0
    tab.evaluate(SET_FIELD, 0)  # back to field 0 before field 1's tiles arrive
    tab.wait_for_function(
        "() => window.held.some(([c]) => c.type === 'pyramid' && c.field === 0)",
        timeout=20000,
    )
    tab.evaluate("() => { window.hold = false; window.release(); }")  # stale ones land
    view = zoom_to_tiles(tab, box, 6, (150, 100))
    _, pixels = shown(tab)
    assert_matches_full(pixels, view, full_image(0))
    with pytest.raises(AssertionError):
        assert_matches_full(pixels, view, full_image(1))
    assert errors == []
