"""PlateViewer with the real client and server on loopback."""

from __future__ import annotations

import threading

from viewer_helpers import SMALL, flush_until, loaded

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.jupyter.viewer import (
    PlateViewer,
    full_resolution_fetcher,
    preview_fetcher,
)


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
