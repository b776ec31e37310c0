"""An Execution fed events directly: its state, running wells, well states."""

from __future__ import annotations

import threading

import pytest

from openhcs_nb.client import ServerLost
from openhcs_nb.client._dispatch import CallbackThread
from openhcs_nb.client.execution import Execution
from openhcs_nb.protocol import (
    Finished,
    Progress,
    Queued,
    Started,
    WellDone,
    WellFailed,
    WellStarted,
)

WELLS = ("A01", "A02", "A03", "B01")


@pytest.fixture
def dispatcher():
    thread = CallbackThread("test-callbacks")
    yield thread
    thread.close()


def handle(dispatcher: CallbackThread, wells: tuple[str, ...] = WELLS) -> Execution:
    return Execution(object(), "ex-1", "plate", dispatcher=dispatcher, wells=wells)


class Feed:
    """Feeds one execution numbered events, as the stream layer would."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.seq = 0

    def __call__(self, kind: type, **fields: object) -> None:
        self.seq += 1
        event = kind(execution_id="ex-1", seq=self.seq, time=0.0, **fields)
        self.execution._apply(event, [])


def drained(dispatcher: CallbackThread) -> None:
    done = threading.Event()
    dispatcher.put(done.set)
    assert done.wait(10)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (WellStarted, {"well": "A01"}),
        (WellDone, {"well": "A01"}),
        (WellFailed, {"well": "A01", "error": "boom"}),
        (Progress, {"done": 1, "failed": 0, "total": 4}),
        (Progress, {"done": 3, "failed": 0, "total": 4, "phase": "illumination"}),
        (Started, {"total": 4, "workers": 2}),
    ],
)
def test_when_the_first_sign_of_work_arrives_then_a_queued_run_is_running(
    dispatcher, kind, fields
):
    execution = handle(dispatcher)
    feed = Feed(execution)
    feed(Queued, position=1)
    assert execution.state == "queued"
    feed(kind, **fields)
    assert execution.state == "running"


def test_when_wells_start_and_finish_then_running_wells_follow_them(dispatcher):
    execution = handle(dispatcher)
    feed = Feed(execution)
    feed(Queued, position=0)
    feed(WellStarted, well="A01")
    feed(WellStarted, well="A02")
    assert execution.running_wells == {"A01", "A02"}
    assert execution.well_state("A01") == "running"
    assert execution.well_state("A03") == "queued"
    feed(WellDone, well="A01")
    feed(WellFailed, well="A02", error="boom")
    assert execution.running_wells == set()
    assert execution.well_state("A01") == "done"
    assert execution.well_state("A02") == "failed"
    feed(WellStarted, well="A01")  # a restarted server re-runs it: first report wins
    assert execution.running_wells == set()
    assert execution.well_state("A01") == "done"


def test_when_a_run_is_cancelled_then_wells_never_run_read_cancelled(dispatcher):
    execution = handle(dispatcher)
    feed = Feed(execution)
    feed(Started, total=4, workers=1)
    feed(WellDone, well="A01")
    feed(WellStarted, well="A02")
    feed(Finished, state="cancelled", done=1, failed=0, total=4)
    assert execution.state == "cancelled"
    assert [execution.well_state(w) for w in WELLS] == [
        "done",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    assert execution.running_wells == set()


def test_when_a_run_fails_as_a_whole_then_its_unrun_wells_read_failed(dispatcher):
    execution = handle(dispatcher)
    feed = Feed(execution)
    feed(WellDone, well="A01")
    feed(Finished, state="failed", done=1, failed=0, total=4, error="plate gone")
    assert execution.well_state("A01") == "done"
    assert execution.well_state("B01") == "failed"


def test_when_a_well_is_not_in_the_run_then_well_state_raises(dispatcher):
    execution = handle(dispatcher)
    with pytest.raises(KeyError, match="H12"):
        execution.well_state("H12")


def test_when_wells_start_then_on_well_started_is_called_once_each(dispatcher):
    execution = handle(dispatcher)
    feed = Feed(execution)
    feed(WellStarted, well="A01")
    started: list[str] = []
    late: list[str] = []
    execution.on_well_started(started.append)  # A01 is replayed
    feed(WellStarted, well="A02")
    feed(WellStarted, well="A02")  # said twice: reported once
    feed(WellDone, well="A01")
    execution.on_well_started(late.append)  # only A02 still runs
    drained(dispatcher)
    assert started == ["A01", "A02"]
    assert late == ["A02"]


def test_when_the_server_is_lost_then_state_says_so_and_result_raises(dispatcher):
    execution = handle(dispatcher)
    feed = Feed(execution)
    feed(WellStarted, well="A01")
    ended = threading.Event()
    execution.add_done_callback(lambda _: ended.set())
    execution._stream_failed(ServerLost("server lost: tcp://x:1 did not answer"))
    assert execution.state == "server lost"
    assert execution.server_lost
    assert execution.wait(0)
    with pytest.raises(ServerLost, match="tcp://x:1"):
        execution.result(0)
    assert ended.wait(10)
    feed(WellDone, well="A01")  # a late event changes nothing
    assert execution.state == "server lost"
    assert execution.progress == (0, 0, 4)
