"""RunPanel: progress, counts, failures and cancel, fed by real WellEvents."""

from __future__ import annotations

import threading
import time

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
    from openhcs_nb.jupyter.run_panel import RunPanel

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    with connect(demo_server.address) as conn:
        run = conn.submit(nuclei_count_pipeline(), "small.ome.zarr", wells=["A01"])
        run._ipython_display_()
        run.wait(60)
        [panel] = shown
        assert isinstance(panel, RunPanel)
        panel.flush()
        assert panel.execution is run
