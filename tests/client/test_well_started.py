"""WellStarted from a real server: wells read running between start and result."""

from __future__ import annotations

import threading

from client_helpers import SMALL, slow_pipeline

WELLS = ["A01", "A02", "A03", "B01", "B02", "B03"]


def test_when_a_run_goes_then_each_well_is_started_once_before_its_result(conn):
    execution = conn.submit(slow_pipeline(4), SMALL)
    order: list[tuple[str, str]] = []
    execution.on_well_started(lambda well: order.append(("started", well)))

    execution.on_well(lambda event: order.append(("result", event.well)))
    execution.result(timeout=180)
    drained = threading.Event()
    execution.add_done_callback(lambda _: drained.set())
    assert drained.wait(30)
    started = [well for kind, well in order if kind == "started"]
    assert sorted(started) == WELLS  # each well once
    for well in WELLS:  # a well starts before its result comes
        assert order.index(("started", well)) < order.index(("result", well))
    assert execution.running_wells == set()
    assert {execution.well_state(well) for well in WELLS} == {"done"}
    assert execution.state == "done"
