"""PlateViewer keeps previews within a byte budget and loads dropped ones again."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import WellEvent, connect
from openhcs_nb.client._preview_cache import previews_nbytes
from openhcs_nb.client._wells import without_previews
from openhcs_nb.jupyter.viewer import PlateViewer
from openhcs_nb.plates.model import PlateLayout

SMALL = "small.ome.zarr"
PER_WELL = 32 * 32 * (2 + 2 + 4)  # events.done: two uint16 channels, int32 labels


def layout() -> PlateLayout:
    wells = tuple(f"{r}{c:02d}" for r in "AB" for c in (1, 2, 3))
    return PlateLayout(
        name="budget plate",
        rows=("A", "B"),
        columns=(1, 2, 3),
        wells=wells,
        fields=1,
        channels=("DAPI", "GFP"),
        z=1,
        t=1,
        dtype="uint16",
        shape=(32, 32),
    )


@pytest.fixture
def refetching(scripted):
    """A scripted execution that, like the client's, re-sends dropped previews."""

    class RefetchingExecution(scripted):
        def __init__(self) -> None:
            super().__init__()
            self.stored: dict[str, dict[str, np.ndarray]] = {}
            self.asked: list[str] = []

        def emit(self, event: WellEvent) -> None:
            self.stored[event.well] = {k: v.copy() for k, v in event.previews.items()}
            super().emit(event)

        def previews(self, well: str) -> dict[str, np.ndarray]:
            self.asked.append(well)
            return {k: v.copy() for k, v in self.stored[well].items()}

    return RefetchingExecution


def flush_until(viewer: PlateViewer, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    viewer.flush()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
        viewer.flush()


def fill(viewer: PlateViewer, execution, events, wells: list[str]) -> None:
    viewer.follow(execution)
    for seq, well in enumerate(wells, start=1):
        execution.emit(events.done(well, seed=seq, seq=seq))
    execution.drain()
    viewer.flush()
    viewer.flush()


def test_when_wells_outgrow_the_viewer_budget_then_only_the_newest_are_kept(
    scripted, events
):
    assert previews_nbytes(events.done("A01").previews) == PER_WELL
    viewer = PlateViewer(layout(), preview_budget_bytes=2 * PER_WELL)
    fill(viewer, scripted(), events, ["A01", "A02", "A03", "B01"])
    assert viewer._previews.keys() == ["A03", "B01"]
    assert viewer._previews.nbytes <= 2 * PER_WELL
    assert set(viewer.values) == {"A01", "A02", "A03", "B01"}  # every summary


def test_when_a_dropped_well_has_no_source_then_the_message_says_it_was_not_kept(
    scripted, events
):
    viewer = PlateViewer(layout(), preview_budget_bytes=2 * PER_WELL)
    fill(viewer, scripted(), events, ["A01", "A02", "A03"])
    viewer.selected_well = "A01"
    viewer.flush()
    assert viewer.image_meta["well"] == "A01"
    assert viewer.image_data == b""
    assert "not kept in memory" in viewer.message
    assert "fetch_well" not in viewer.message and "yet" not in viewer.message


def test_when_a_dropped_well_is_selected_then_it_is_fetched_again_and_drawn(
    refetching, events
):
    viewer = PlateViewer(layout(), preview_budget_bytes=2 * PER_WELL)
    execution = refetching()
    fill(viewer, execution, events, ["A01", "A02", "A03"])
    viewer.selected_well = "A02"  # kept: drawn from memory, nothing asked
    viewer.flush()
    assert viewer.image_meta["well"] == "A02" and execution.asked == []
    viewer.selected_well = "A01"
    viewer.flush()
    assert "loading" in viewer.message
    flush_until(viewer, lambda: bool(viewer.image_meta.get("planes")))
    assert execution.asked == ["A01"]
    assert viewer.image_meta["well"] == "A01" and viewer.message == ""
    dapi = next(p for p in viewer.image_meta["planes"] if p["name"] == "DAPI")
    sent = np.frombuffer(viewer.image_data, "<u2", 32 * 32, dapi["offset"])
    assert np.array_equal(sent.reshape(32, 32), execution.stored["A01"]["image/DAPI"])
    assert viewer._previews.keys() == ["A03", "A01"]  # kept again, as the newest
    assert viewer._previews.nbytes <= 2 * PER_WELL


def test_when_following_late_then_records_without_images_are_fetched_on_selection(
    refetching, events
):
    execution = refetching()
    execution.emit(events.done("B02", seed=4))
    execution._events[-1] = without_previews(execution._events[-1])  # client dropped
    viewer = PlateViewer(layout())
    viewer.follow(execution)
    execution.drain()
    viewer.flush()
    viewer.selected_well = "B02"
    flush_until(viewer, lambda: bool(viewer.image_meta.get("planes")))
    assert execution.asked == ["B02"]
    assert {p["name"] for p in viewer.image_meta["planes"]} == {
        "DAPI",
        "GFP",
        "nuclei",
    }


def test_when_a_real_run_outgrows_both_budgets_then_an_old_well_still_shows(
    demo_server,
):
    budget = 700_000  # about two wells of 128² previews (320 KiB each)
    with connect(demo_server.address, preview_budget_bytes=budget) as conn:
        viewer = PlateViewer(conn.plate_info(SMALL), preview_budget_bytes=budget)
        execution = conn.submit(nuclei_count_pipeline(), SMALL, preview_size=128)
        viewer.follow(execution)
        execution.result(timeout=120)
        drained = threading.Event()
        execution.add_done_callback(lambda _: drained.set())
        assert drained.wait(30)
        flush_until(viewer, lambda: set(viewer.status.values()) == {"done"})
        oldest = min(execution.wells.values(), key=lambda e: e.seq)
        assert oldest.previews_dropped and oldest.well not in viewer._previews
        viewer.selected_well = oldest.well
        flush_until(
            viewer,
            lambda: (
                viewer.image_meta.get("well") == oldest.well
                and bool(viewer.image_meta.get("planes"))
            ),
        )
        kinds = {p["kind"] for p in viewer.image_meta["planes"]}
        assert kinds == {"image", "labels"}
        assert viewer.image_meta["height"] == 128
        assert conn.preview_cache.nbytes <= budget
        assert viewer._previews.nbytes <= budget
        viewer.close()
