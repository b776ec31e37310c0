"""PlateViewer: traits fed by WellEvents, binary image buffers, the JS core."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ipywidgets.widgets.widget import _remove_buffers

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.jupyter._images import (
    ChannelSetting,
    composite_rgb,
    pack_planes,
    split_planes,
)
from openhcs_nb.jupyter.viewer import (
    STATIC,
    PlateViewer,
    full_resolution_fetcher,
    preview_fetcher,
)
from openhcs_nb.plates.model import PlateLayout

SMALL = "small.ome.zarr"
JS = STATIC / "plate_viewer.js"


def layout(rows: str = "AB", columns: int = 3, fields: int = 2) -> PlateLayout:
    wells = tuple(f"{r}{c:02d}" for r in rows for c in range(1, columns + 1))
    return PlateLayout(
        name="test plate",
        rows=tuple(rows),
        columns=tuple(range(1, columns + 1)),
        wells=wells,
        fields=fields,
        channels=("DAPI", "GFP"),
        z=1,
        t=1,
        dtype="uint16",
        shape=(32, 32),
    )


def flush_until(viewer: PlateViewer, condition, timeout: float = 30.0) -> None:
    """Flush (waiting for any flush in progress) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    viewer.flush()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
        viewer.flush()


def loaded(viewer: PlateViewer, well: str | None = None, field: int | None = None):
    """Whether the viewer shows (well, field) for real, not a "loading" line."""
    meta = viewer.image_meta
    return (
        (well is None or meta.get("well") == well)
        and (field is None or meta.get("field") == field)
        and not viewer.message.startswith("loading")
    )


def test_when_wells_arrive_then_status_values_and_measurements_update(scripted, events):
    viewer = PlateViewer(layout())
    execution = scripted(wells=viewer.wells)
    viewer.follow(execution)
    execution.emit(events.done("A01", seed=1, count=5))
    execution.emit(events.failed("B02", seq=2))
    execution.drain()
    viewer.flush()
    assert viewer.status["A01"] == "done"
    assert viewer.status["B02"] == "failed"
    assert viewer.status["A02"] == "queued"
    assert viewer.values["A01"] == {"count": 5.0, "area_mean": 81.0}
    assert viewer.measurements == ["area_mean", "count"]
    assert viewer.errors["B02"] == "ValueError: no nuclei"
    assert viewer.plate_name == "test plate"
    assert viewer.fields == 2


def test_when_many_wells_arrive_together_then_one_batch_sets_status_once(
    scripted, events
):
    viewer = PlateViewer(layout("ABCDEFGH", 12), interval=60.0)
    changes: list[object] = []
    viewer.observe(changes.append, names=["status"])
    execution = scripted(wells=viewer.wells)
    viewer.follow(execution)
    for i, well in enumerate(viewer.wells):
        execution.emit(events.done(well, seed=i, size=8, seq=i + 1))
    execution.drain()
    applied = viewer.flush()
    assert applied == 2 + 96  # queued marks and run state, then every well
    assert len(changes) == 1
    assert set(viewer.status.values()) == {"done"}


def test_when_a_well_arrives_then_its_images_go_out_as_a_binary_buffer(
    scripted, events
):
    viewer = PlateViewer(layout())
    execution = scripted()
    viewer.follow(execution)
    execution.emit(events.done("A02", size=40))
    execution.drain()
    viewer.flush()  # the event; the first well with images gets selected
    viewer.flush()  # loads the selected well's images
    assert viewer.selected_well == "A02"
    meta = viewer.image_meta
    assert (meta["well"], meta["height"], meta["width"]) == ("A02", 40, 40)
    kinds = {p["name"]: (p["kind"], p["dtype"]) for p in meta["planes"]}
    assert kinds == {
        "DAPI": ("image", "uint16"),
        "GFP": ("image", "uint16"),
        "nuclei": ("labels", "uint32"),
    }
    assert isinstance(viewer.image_data, bytes)
    assert len(viewer.image_data) == 40 * 40 * (2 + 2 + 4)
    dapi = next(p for p in meta["planes"] if p["name"] == "DAPI")
    sent = np.frombuffer(viewer.image_data, "<u2", 1600, dapi["offset"])
    assert np.array_equal(
        sent.reshape(40, 40), events.done("A02", size=40).previews["image/DAPI"]
    )

    state, paths, buffers = _remove_buffers(viewer.get_state())
    assert ["image_data"] in paths
    assert [len(b) for b in buffers] == [len(viewer.image_data)]
    assert "image_data" not in state
    text = json.dumps({k: v for k, v in state.items() if k not in ("_esm", "_css")})
    assert len(text) < len(viewer.image_data) / 4  # no base64 copy hides in it
    names = [c["name"] for c in viewer.channels]
    assert names == ["DAPI", "GFP"]
    assert all(c["min"] < c["max"] for c in viewer.channels)


def test_when_nan_measurement_then_value_is_none_so_json_accepts_it(scripted, events):
    viewer = PlateViewer(layout())
    execution = scripted()
    viewer.follow(execution)
    event = events.done("A01")
    event.summary["area_mean"] = float("nan")
    execution.emit(event)
    execution.drain()
    viewer.flush()
    assert viewer.values["A01"]["area_mean"] is None
    json.dumps(viewer.get_state(["values"]), allow_nan=False)


def test_when_user_changes_channel_then_switching_wells_keeps_the_setting(
    scripted, events
):
    viewer = PlateViewer(layout())
    execution = scripted()
    viewer.follow(execution)
    execution.emit(events.done("A01", seed=1))
    execution.emit(events.done("A02", seed=2, seq=2))
    execution.drain()
    viewer.flush()
    viewer.flush()
    viewer.channels = [{**viewer.channels[0], "color": "#123456", "max": 99}] + [
        dict(c) for c in viewer.channels[1:]
    ]
    viewer.selected_well = "A02"
    viewer.flush()
    assert viewer.image_meta["well"] == "A02"
    assert viewer.channels[0]["color"] == "#123456"
    assert viewer.channels[0]["max"] == 99


def test_when_failed_well_selected_then_message_names_its_error(scripted, events):
    viewer = PlateViewer(layout())
    execution = scripted()
    viewer.follow(execution)
    execution.emit(events.failed("B01"))
    execution.drain()
    viewer.flush()
    viewer.selected_well = "B01"
    viewer.flush()
    assert viewer.message == "B01 failed: ValueError: no nuclei"
    assert viewer.image_data == b""


def test_when_execution_finishes_then_run_state_says_so(scripted):
    viewer = PlateViewer(layout())
    execution = scripted()
    viewer.follow(execution)
    execution.finish("failed", error="plate unreadable")
    execution.drain()
    viewer.flush()
    assert viewer.run_state == "failed: plate unreadable"


def test_when_no_layout_then_wells_seen_grow_the_grid(scripted, events):
    viewer = PlateViewer()
    execution = scripted()
    viewer.follow(execution)
    execution.emit(events.done("C05"))
    execution.emit(events.done("A02", seq=2))
    execution.drain()
    viewer.flush()
    assert viewer.rows == ["A", "C"]
    assert viewer.columns == [2, 5]
    assert sorted(viewer.wells) == ["A02", "C05"]


@pytest.fixture
def tracked(scripted):
    """A scripted execution with the client's well states, starts and results."""

    class TrackedExecution(scripted):
        def __init__(self, wells: tuple[str, ...]) -> None:
            super().__init__(wells=wells)
            self.state = "queued"
            self.running: set[str] = set()
            self.ended = False
            self.started_callbacks: list = []
            self.full_asked: list[tuple[str, int]] = []

        def on_well_started(self, callback):
            self.started_callbacks.append(callback)
            return callback

        def start(self, well: str) -> None:
            self.state = "running"
            self.running.add(well)
            for callback in self.started_callbacks:
                self._queue.put(lambda cb=callback: cb(well))

        def emit(self, event) -> None:
            self.state = "running"
            self.running.discard(event.well)
            super().emit(event)

        def done(self) -> bool:
            return self.ended

        def finish(self, state: str = "done", error: str | None = None) -> None:
            self.ended = True
            self.running.clear()
            super().finish(state, error)

        def well_state(self, well: str) -> str:
            if well in self.wells:
                return self.wells[well].status
            if well not in self.requested_wells:
                raise KeyError(well)
            if self.ended:
                return "cancelled"
            return "running" if well in self.running else "queued"

        def previews(self, well: str):
            return dict(self.wells[well].previews)

        def fetch_full(self, well: str, timeout=None, *, site: int = 0):
            self.full_asked.append((well, site))
            if well not in self.wells:
                raise KeyError(f"execution ex-scripted has no result for well {well!r}")
            return {"image/DAPI": np.full((16, 16), 100 + site, np.uint16)}

    return TrackedExecution


def test_when_a_well_starts_then_it_shows_running_and_so_does_the_run(tracked, events):
    viewer = PlateViewer(layout())
    execution = tracked(("A01", "A02", "A03"))
    viewer.follow(execution)
    execution.drain()
    viewer.flush()
    assert viewer.run_state == "queued"
    execution.start("A02")
    execution.drain()
    viewer.flush()
    assert viewer.status["A02"] == "running"
    assert viewer.status["A01"] == "queued"
    assert viewer.run_state == "running"  # the execution's own state
    execution.emit(events.done("A02"))
    execution.start("A02")  # a late start never undoes a result
    execution.drain()
    viewer.flush()
    assert viewer.status["A02"] == "done"


def test_when_a_run_is_cancelled_then_its_unrun_wells_read_cancelled(tracked, events):
    viewer = PlateViewer(layout())
    execution = tracked(("A01", "A02", "A03"))
    viewer.follow(execution)
    execution.start("A02")
    execution.emit(events.done("A01"))
    execution.drain()
    viewer.flush()
    execution.finish("cancelled")
    execution.drain()
    viewer.flush()
    assert viewer.status == {"A01": "done", "A02": "cancelled", "A03": "cancelled"}
    assert viewer.run_state == "cancelled"


def test_when_the_server_is_lost_then_the_viewer_says_so_like_the_panel(tracked):
    viewer = PlateViewer(layout())
    execution = tracked(("A01",))
    viewer.follow(execution)
    hint = "tcp://127.0.0.1:5555 did not answer for 15 s; reconnect and reattach"
    execution.finish("server lost", error=hint)
    execution.drain()
    viewer.flush()
    assert viewer.run_state == f"server lost: {hint}"


def test_when_following_and_user_picks_another_field_then_it_comes_from_the_server(
    tracked, events
):
    viewer = PlateViewer(layout(fields=3))
    execution = tracked(("A01", "A02"))
    viewer.follow(execution)
    execution.emit(events.done("A01", size=32))
    execution.drain()
    viewer.flush()
    viewer.flush()
    assert viewer.image_meta["well"] == "A01"
    viewer.field = 2
    flush_until(viewer, lambda: loaded(viewer, field=2))
    assert execution.full_asked == [("A01", 2)]
    assert (viewer.image_meta["height"], viewer.image_meta["width"]) == (16, 16)
    assert viewer.message == ""
    viewer.selected_well = "A02"  # not run yet: one line, no hint to developers
    flush_until(viewer, lambda: viewer.message != "")
    assert viewer.message == "A02 field 2: A02 is queued: it has no images yet"
    assert "fetch_well" not in viewer.message


def test_when_the_fetch_waits_then_the_auto_selected_well_shows_its_previews_now(
    scripted, events
):
    release = threading.Event()

    def slow_preview(well: str, field: int):
        release.wait(30)  # a server preview queued behind the run's own wells
        return {"input/DAPI": np.full((8, 8), 7, np.uint16)}

    viewer = PlateViewer(layout(), fetch_well=slow_preview)
    execution = scripted(wells=("A01", "A02"))
    viewer.follow(execution)
    execution.emit(events.done("A01", size=32))
    execution.drain()
    viewer.flush()  # the event; A01 gets selected
    viewer.flush()  # its streamed previews are drawn at once
    assert viewer.selected_well == "A01"
    assert (viewer.image_meta["height"], viewer.image_meta["width"]) == (32, 32)
    assert len(viewer.image_data) == 32 * 32 * (2 + 2 + 4)
    assert viewer.message == ""
    release.set()
    flush_until(viewer, lambda: viewer.image_meta.get("height") == 8)
    assert [p["name"] for p in viewer.image_meta["planes"]] == ["input/DAPI"]


def test_when_no_execution_and_another_field_is_picked_then_message_has_no_hint():
    viewer = PlateViewer(layout())
    viewer.show_well("B02", {"image/DAPI": np.ones((4, 6), np.uint8)})
    viewer.flush()
    viewer.flush()
    viewer.field = 1
    viewer.flush()
    assert viewer.message == "B02 field 1: only field 0 was sent to this viewer"


def test_when_fetch_is_slow_then_an_older_selection_never_overwrites_a_newer():
    release_first = threading.Event()
    calls: list[tuple[str, int]] = []

    def fetch(well: str, field: int):
        calls.append((well, field))
        if well == "A01":
            release_first.wait(10)
        return {"image/DAPI": np.full((8, 8), len(calls), np.uint16)}

    viewer = PlateViewer(layout(), fetch_well=fetch)
    viewer.selected_well = "A01"  # blocks in fetch
    viewer.selected_well = "A02"
    flush_until(viewer, lambda: loaded(viewer, well="A02"))
    release_first.set()
    deadline = time.monotonic() + 30
    while viewer.flush() == 0:  # wait for the stale A01 result to be applied
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert viewer.image_meta["well"] == "A02"
    viewer.field = 1
    flush_until(viewer, lambda: loaded(viewer, field=1))
    assert calls[-1] == ("A02", 1)


def test_when_fetch_fails_then_message_names_well_field_and_error():
    def fetch(well: str, field: int):
        raise KeyError(f"no result for {well}")

    viewer = PlateViewer(layout(), fetch_well=fetch)
    viewer.selected_well = "B03"
    flush_until(viewer, lambda: viewer.message != "")
    assert viewer.message == "B03 field 0: no result for B03"


def test_when_show_well_is_called_then_that_well_is_selected_and_drawn():
    viewer = PlateViewer(layout())
    viewer.show_well("B02", {"image/DAPI": np.ones((4, 6), np.uint8)})
    viewer.flush()
    viewer.flush()
    assert viewer.selected_well == "B02"
    assert (viewer.image_meta["height"], viewer.image_meta["width"]) == (4, 6)
    assert viewer.image_meta["planes"][0]["dtype"] == "uint8"
    assert len(viewer.image_data) == 24


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
    # the one module: well_view.js, then this file less its local import
    tail = text.split('from "./well_view.js";\n', 1)[1]
    assert state["_esm"].endswith(tail)
    assert (STATIC / "well_view.js").read_text() in state["_esm"]
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


# --- with the real client and server --------------------------------------------


def test_when_following_a_real_execution_then_every_well_fills_in(conn):
    viewer = PlateViewer(conn.plate_info(SMALL))
    execution = conn.submit(nuclei_count_pipeline(), SMALL)
    viewer.follow(execution)
    execution.result(timeout=120)
    drained = threading.Event()
    execution.add_done_callback(lambda _: drained.set())
    assert drained.wait(30)
    flush_until(viewer, lambda: bool(viewer.image_meta.get("planes")))
    assert viewer.status == {w: "done" for w in viewer.wells}
    assert len(viewer.wells) == 6
    assert all(viewer.values[w]["count"] > 0 for w in viewer.wells)
    assert "count" in viewer.measurements
    kinds = {p["kind"] for p in viewer.image_meta["planes"]}
    assert kinds == {"image", "labels"}
    meta = viewer.image_meta
    assert len(viewer.image_data) >= meta["height"] * meta["width"] * 2
    assert viewer.run_state == "done"


def test_when_fetching_previews_from_the_server_then_any_field_can_be_shown(conn):
    fetch = preview_fetcher(conn, nuclei_count_pipeline(), SMALL, max_size=64)
    viewer = PlateViewer(conn.plate_info(SMALL), fetch_well=fetch)
    viewer.selected_well = "B02"
    viewer.field = 1
    flush_until(viewer, lambda: loaded(viewer, field=1))
    names = {p["name"] for p in viewer.image_meta["planes"]}
    assert {"input/DAPI", "input/GFP"} <= names
    assert any(p["kind"] == "labels" for p in viewer.image_meta["planes"])
    assert viewer.image_meta["well"] == "B02"


def test_when_fetching_full_resolution_then_the_selected_well_is_full_size(conn):
    execution = conn.submit(nuclei_count_pipeline(), SMALL, preview_size=64)
    viewer = PlateViewer(
        conn.plate_info(SMALL), fetch_well=full_resolution_fetcher(execution)
    )
    viewer.follow(execution)
    execution.result(timeout=120)
    viewer.selected_well = "A03"
    # The streamed 64-pixel previews show at once; the full-size field follows.
    flush_until(
        viewer,
        lambda: loaded(viewer, well="A03") and viewer.image_meta["height"] == 256,
    )
    assert viewer.image_meta["width"] == 256
    assert {p["name"] for p in viewer.image_meta["planes"]} >= {"DAPI", "GFP"}
    viewer.field = 1
    flush_until(viewer, lambda: loaded(viewer, field=1))
    assert viewer.message == ""
    assert (viewer.image_meta["height"], viewer.image_meta["width"]) == (256, 256)


def test_when_following_a_real_execution_then_every_field_can_be_browsed(conn):
    execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=["B01"])
    viewer = PlateViewer(conn.plate_info(SMALL)).follow(execution)
    execution.result(timeout=120)
    flush_until(viewer, lambda: loaded(viewer, well="B01"))
    first = viewer.image_data
    viewer.field = 1
    flush_until(viewer, lambda: loaded(viewer, field=1))
    assert viewer.message == ""
    assert {p["kind"] for p in viewer.image_meta["planes"]} == {"image", "labels"}
    assert viewer.image_data != first


def test_when_a_preview_has_input_and_output_planes_then_only_inputs_start_visible():
    from openhcs_nb.jupyter._viewer_state import channel_settings

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
