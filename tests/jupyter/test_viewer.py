"""PlateViewer: state fed by WellEvents, per-well deltas, binary image buffers."""

from __future__ import annotations

import json

import numpy as np
from ipywidgets.widgets.widget import _remove_buffers
from viewer_helpers import Wire, layout

from openhcs_nb.jupyter.viewer import PlateViewer


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
    wire = Wire(viewer)
    execution = scripted()
    viewer.follow(execution)
    event = events.done("A01")
    event.summary["area_mean"] = float("nan")
    execution.emit(event)
    execution.drain()
    viewer.flush()
    assert viewer.values["A01"]["area_mean"] is None
    [sent] = wire.wells()  # Wire encodes with allow_nan=False, as a page needs
    assert sent["values"]["A01"]["area_mean"] is None


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


# --- per-well state goes to the page as deltas ------------------------------------


def batch(viewer: PlateViewer, execution, events, wells: list[str], seq: int) -> int:
    """Emit ``wells`` as done, apply them as one batch; returns the next seq."""
    for well in wells:
        execution.emit(events.done(well, seed=seq, size=4, seq=seq))
        seq += 1
    execution.drain()
    viewer.flush()
    return seq


def test_when_a_batch_finishes_some_wells_then_the_page_gets_only_those(
    scripted, events
):
    viewer = PlateViewer(layout("ABCD", 6), interval=60.0)
    wire = Wire(viewer)
    execution = scripted(wells=viewer.wells)
    viewer.follow(execution)
    seq = batch(viewer, execution, events, ["A01", "A02"], 1)
    wire.clear()
    batch(viewer, execution, events, ["B03"], seq)
    [sent] = wire.wells()
    assert sent["full"] is False
    assert sent["status"] == {"B03": "done"}
    assert list(sent["values"]) == ["B03"]
    assert sent["errors"] == {}
    state = viewer.get_state()
    assert not {"status", "values", "errors"} & set(state)  # not widget state
    assert viewer.status["A01"] == viewer.status["B03"] == "done"  # still readable


def test_when_a_view_opens_late_then_ready_brings_every_well(scripted, events):
    viewer = PlateViewer(layout("AB", 4), interval=60.0)
    execution = scripted(wells=viewer.wells)
    viewer.follow(execution)
    execution.emit(events.failed("B02", seq=1))
    batch(viewer, execution, events, ["A01", "A03"], 2)
    wire = Wire(viewer)  # a page that saw none of the deltas
    viewer._handle_custom_msg({"type": "ready"}, [])  # as the page's ready() sends
    viewer.flush()
    [sent] = wire.wells()
    assert sent["full"] is True
    assert sent["status"] == viewer.status
    assert len(sent["status"]) == 8
    assert sent["values"] == viewer.values
    assert sent["errors"] == {"B02": "ValueError: no nuclei"}


def test_when_a_batch_changes_no_well_then_no_wells_message_goes_out(scripted):
    viewer = PlateViewer(layout(), interval=60.0)
    execution = scripted(wells=viewer.wells)
    viewer.follow(execution)
    viewer.flush()
    wire = Wire(viewer)
    execution.finish("failed", error="plate unreadable")
    execution.drain()
    viewer.flush()
    assert viewer.run_state == "failed: plate unreadable"
    assert wire.wells() == []
