"""PlateViewer following an execution: running, cancelled and lost runs, fetches."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from viewer_helpers import flush_until, layout, loaded

from openhcs_nb.jupyter.viewer import PlateViewer


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
