"""The viewer's JS module: shipped in the package, and its core against Python."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from viewer_helpers import JS

from openhcs_nb.jupyter._images import (
    ChannelSetting,
    composite_rgb,
    pack_planes,
    split_planes,
)
from openhcs_nb.jupyter._viewer_esm import ESM_PARTS
from openhcs_nb.jupyter._viewer_state import channel_settings
from openhcs_nb.jupyter.viewer import STATIC, PlateViewer


def test_when_widget_is_built_then_its_module_ships_in_the_package_without_cdn():
    viewer = PlateViewer()
    text = JS.read_text()
    assert (
        JS.parent == Path(__import__("openhcs_nb").__file__).parent / "jupyter/static"
    )
    assert "export default" in text
    assert "http://" not in text
    assert "https://" not in text
    assert "render" in text
    state = viewer.get_state()
    # the one module: every part in load order, less its local imports, this
    # file last
    tail = text.split('from "./well_view.js";\n', 1)[1]
    assert state["_esm"].endswith(tail)
    at = 0
    for name in ESM_PARTS:
        kept = "\n".join(
            line
            for line in (STATIC / name).read_text().splitlines()
            if not (line.startswith("import ") and 'from "./' in line)
        )
        found = state["_esm"].find(kept, at)
        assert found >= at, f"{name} is missing or out of order"
        at = found + len(kept)
    assert 'from "./' not in state["_esm"]
    assert state["_css"] == (STATIC / "plate_viewer.css").read_text()


# --- the JS core, run by node against the Python reference ---------------------

NODE_SCRIPT = """
import { readFileSync, writeFileSync } from "node:fs";
const [moduleUrl, dataPath, specPath, outPath] = process.argv.slice(2);
const m = await import(moduleUrl);
const raw = readFileSync(dataPath);
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
const planes = m.decodePlanes(view, spec.meta);
const rgba = m.composeRGBA(planes, spec.meta.width, spec.meta.height,
                           spec.channels, spec.show_labels);
writeFileSync(outPath, rgba);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("show_labels", [True, False])
def test_when_js_composes_planes_then_pixels_equal_the_python_reference(
    tmp_path, show_labels
):
    rng = np.random.default_rng(3)
    labels = np.zeros((31, 37), np.int32)
    labels[3:10, 5:20] = 7
    labels[12:30, 2:9] = 70000  # needs uint32
    images = {
        "image/DAPI": rng.integers(0, 3000, (31, 37)).astype(np.uint16),
        "image/GFP": rng.integers(0, 255, (31, 37)).astype(np.uint8),  # odd size
        "image/RFP": rng.random((31, 37)).astype(np.float32),
        "labels/nuclei": labels,
        "labels/cells": np.roll(labels, 3, axis=1),
    }
    data, meta = pack_planes(images)
    channels = [
        {"name": "DAPI", "color": "#3f7fff", "visible": True, "min": 100, "max": 2500},
        {"name": "GFP", "color": "#00ff00", "visible": True, "min": 0, "max": 200},
        {"name": "RFP", "color": "#ff00ff", "visible": False, "min": 0, "max": 9},
    ]
    (tmp_path / "data.bin").write_bytes(data)
    spec = {"meta": meta, "channels": channels, "show_labels": show_labels}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "run.mjs").write_text(NODE_SCRIPT)
    out = tmp_path / "out.rgba"
    subprocess.run(
        [
            "node",
            str(tmp_path / "run.mjs"),
            JS.as_uri(),
            str(tmp_path / "data.bin"),
            str(tmp_path / "spec.json"),
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    js = np.frombuffer(out.read_bytes(), np.uint8).reshape(31, 37, 4)
    planes, label_planes = split_planes(images)
    settings = {
        c["name"]: ChannelSetting(c["color"], c["min"], c["max"], c["visible"])
        for c in channels
    }
    display = {
        p["name"]: np.frombuffer(
            data, {"uint8": "u1", "uint16": "<u2"}[p["dtype"]], 31 * 37, p["offset"]
        ).reshape(31, 37)
        for p in meta["planes"]
        if p["kind"] == "image"
    }
    expected = composite_rgb(
        [(display[name], settings[name]) for name in planes],
        list(label_planes.values()) if show_labels else [],
    )
    assert np.array_equal(js[..., :3], expected)
    assert (js[..., 3] == 255).all()
    assert expected.any()


def test_when_a_preview_has_input_and_output_planes_then_only_inputs_start_visible():
    rng = np.random.default_rng(2)
    images = {
        name: rng.integers(0, 900, (8, 8)).astype(np.uint16)
        for name in ("input/DAPI", "input/GFP", "quality/DAPI", "quality/GFP")
    }
    data, meta = pack_planes(images)
    settings = channel_settings([], data, meta)
    visible = {c["name"]: c["visible"] for c in settings}
    assert visible == {
        "input/DAPI": True,
        "input/GFP": True,
        "quality/DAPI": False,
        "quality/GFP": False,
    }
    assert all(0 <= c["min"] < c["max"] <= 900 for c in settings)
