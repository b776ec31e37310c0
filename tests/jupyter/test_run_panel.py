"""RunPanel: progress, counts, failures and cancel, fed by real WellEvents."""

from __future__ import annotations

import threading
import time

import pytest

from openhcs_nb.jupyter._panel_eta import format_left, seconds_left
from openhcs_nb.jupyter.run_panel import RunPanel

WELLS = ("A01", "A02", "A03", "B01")


def flush_until(panel: RunPanel, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    panel.flush()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
        panel.flush()


def test_when_wells_arrive_then_bar_and_counts_follow(scripted, events):
    execution = scripted(wells=WELLS)
    panel = RunPanel(execution)
    assert (panel.bar.value, panel.bar.max) == (0, 4)
    execution.emit(events.done("A01"))
    execution.emit(events.done("A02", seq=2))
    execution.emit(events.failed("B01", seq=3))
    execution.drain()
    panel.flush()
    assert (panel.bar.value, panel.bar.max) == (3, 4)
    assert panel.done_wells == 2
    assert "2 done &middot; 1 failed &middot; 4 wells" in panel.counts.value
    assert panel.bar.bar_style == "danger"
    assert not panel.cancel_button.disabled


def test_when_a_well_fails_then_its_error_and_traceback_are_listed(scripted, events):
    execution = scripted(wells=WELLS)
    panel = RunPanel(execution)
    execution.emit(events.failed("A03"))
    execution.drain()
    panel.flush()
    assert panel.failures.titles == ("A03: ValueError: no nuclei",)
    (body,) = panel.failures.children
    assert "Traceback (most recent call last)" in body.value
    assert panel.failed_wells["A03"][0] == "ValueError: no nuclei"


def test_when_a_well_is_reported_twice_then_it_counts_once(scripted, events):
    execution = scripted(wells=WELLS)
    panel = RunPanel(execution)
    execution.emit(events.done("A01"))
    execution.emit(events.done("A01", seq=5))
    execution.drain()
    panel.flush()
    assert panel.bar.value == 1


def test_when_execution_finishes_then_cancel_is_disabled_and_state_shown(
    scripted, events
):
    execution = scripted(wells=WELLS[:1])
    panel = RunPanel(execution)
    execution.emit(events.done("A01"))
    execution.finish("done")
    execution.drain()
    panel.flush()
    assert panel.cancel_button.disabled
    assert panel.bar.bar_style == "success"
    assert panel.title.value.endswith(": done")
    assert "ex-scripted" in panel.title.value


def test_when_cancel_is_clicked_then_execution_cancel_runs_off_the_kernel_thread(
    scripted,
):
    execution = scripted(wells=WELLS)
    threads: list[int] = []
    original = execution.cancel

    def cancel() -> bool:
        threads.append(threading.get_ident())
        return original()

    execution.cancel = cancel
    panel = RunPanel(execution)
    panel.cancel_button.click()
    assert panel.cancel_button.disabled
    flush_until(panel, lambda: panel.title.value.endswith(": cancelled"))
    assert execution.cancel_calls == 1
    assert threads and threads[0] != threading.get_ident()


def test_when_cancel_fails_then_the_panel_says_why_and_allows_a_retry(scripted):
    execution = scripted(wells=WELLS)

    def cancel() -> bool:
        raise TimeoutError("no reply within 10 s")

    execution.cancel = cancel
    panel = RunPanel(execution)
    panel.cancel_button.click()
    flush_until(panel, lambda: "cancel failed" in panel.counts.value)
    assert "TimeoutError: no reply within 10 s" in panel.counts.value
    assert not panel.cancel_button.disabled


@pytest.fixture
def live(scripted):
    """A scripted execution whose state and running wells move like the client's."""

    class LiveExecution(scripted):
        def __init__(self, wells: tuple[str, ...]) -> None:
            super().__init__(wells=wells)
            self.state = "queued"
            self.running_wells: set[str] = set()
            self.started: list = []

        def on_well_started(self, callback):
            self.started.append(callback)
            return callback

        def start(self, well: str) -> None:
            self.state = "running"
            self.running_wells.add(well)
            for callback in self.started:
                self._queue.put(lambda cb=callback: cb(well))

        def emit(self, event) -> None:
            self.running_wells.discard(event.well)
            super().emit(event)

    return LiveExecution


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_when_a_well_starts_while_others_run_then_panel_reads_running(live):
    execution = live(WELLS)
    panel = RunPanel(execution)
    assert panel.title.value.endswith(": queued")
    execution.start("A02")  # no well finished yet, another run holds workers
    execution.drain()
    panel.flush()
    assert panel.title.value.endswith(": running")
    assert "1 running" in panel.counts.value


def test_when_a_run_starts_without_a_well_event_then_the_tick_reads_it(live):
    execution = live(WELLS)
    panel = RunPanel(execution, tick=0.05)
    assert panel.title.value.endswith(": queued")
    execution.state = "running"  # a Started event: the client has no callback
    flush_until(panel, lambda: panel.title.value.endswith(": running"))
    panel.close()


def test_when_two_wells_are_done_then_time_left_is_estimated_from_their_rate(
    live, events
):
    clock = FakeClock()
    execution = live(WELLS)
    panel = RunPanel(execution, clock=clock)
    clock.now = 100.0
    execution.emit(events.done("A01"))
    execution.drain()
    panel.flush()
    assert panel.time_left is None
    assert "left" not in panel.counts.value
    clock.now = 110.0
    execution.emit(events.done("A02", seq=2))
    execution.drain()
    panel.flush()
    assert panel.time_left == pytest.approx(20.0)  # 2 wells to go, 10 s each
    assert "about 20 s left" in panel.counts.value
    clock.now = 115.0
    assert panel.time_left == pytest.approx(15.0)
    execution.finish("done")
    execution.drain()
    panel.flush()
    assert panel.time_left is None
    assert "left" not in panel.counts.value


def test_when_the_server_is_lost_then_panel_says_so_with_the_client_hint(live, events):
    execution = live(WELLS)
    panel = RunPanel(execution)
    execution.emit(events.done("A01"))
    hint = (
        "tcp://127.0.0.1:5555 did not answer for 15 s; reconnect with "
        "hcs.connect(...) and reattach with conn.attach(ex-1)"
    )
    execution.finish("server lost", error=hint)
    execution.drain()
    panel.flush()
    assert panel.title.value.endswith(f": server lost: {hint}")
    assert panel.cancel_button.disabled
    assert panel.bar.bar_style == "danger"


def test_when_a_run_is_cancelled_then_unrun_wells_count_as_cancelled(live, events):
    execution = live(WELLS)
    panel = RunPanel(execution)
    execution.start("A01")
    execution.emit(events.done("A02"))
    execution.finish("cancelled")
    execution.drain()
    panel.flush()
    assert panel.title.value.endswith(": cancelled")
    counts = "1 done &middot; 0 failed &middot; 4 wells &middot; 3 cancelled"
    assert counts in panel.counts.value
    assert "running" not in panel.counts.value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "about 1 s left"),
        (42.4, "about 42 s left"),
        (150, "about 2 min left"),
        (3600, "about 1 h left"),
        (4800, "about 1 h 20 min left"),
    ],
)
def test_when_time_left_is_formatted_then_it_reads_in_words(seconds, text):
    assert format_left(seconds) == text


def test_when_wells_finish_at_once_or_none_are_left_then_no_estimate_is_made():
    assert seconds_left([5.0, 5.0], 10, 6.0) is None
    assert seconds_left([1.0, 3.0, 5.0], 3, 6.0) is None
    assert seconds_left([1.0, 3.0], 6, 3.0) == pytest.approx(8.0)


def test_when_following_a_real_execution_then_all_wells_are_counted(conn):
    from openhcs_nb import nuclei_count_pipeline

    execution = conn.submit(nuclei_count_pipeline(), "small.ome.zarr")
    panel = RunPanel(execution)
    execution.result(timeout=120)
    drained = threading.Event()
    execution.add_done_callback(lambda _: drained.set())
    assert drained.wait(30)
    panel.flush()
    assert (panel.bar.value, panel.bar.max) == (6, 6)
    assert panel.done_wells == 6
    assert panel.cancel_button.disabled
    assert panel.title.value.endswith(": done")


def test_when_an_execution_is_displayed_then_a_live_run_panel_is_shown(
    demo_server, monkeypatch
):
    import IPython.display

    from openhcs_nb import connect, nuclei_count_pipeline
    from openhcs_nb.jupyter._display import show_execution
    from openhcs_nb.jupyter.run_panel import RunPanel

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    with connect(demo_server.address) as conn:
        run = conn.submit(nuclei_count_pipeline(), "small.ome.zarr", wells=["A01"])
        show_execution(run)  # what IPython calls once the display is registered
        run.wait(60)
        [panel] = shown
        assert isinstance(panel, RunPanel)
        panel.flush()
        assert panel.execution is run
