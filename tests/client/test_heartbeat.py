"""The heartbeat alone, driven by hand: when it asks, what counts as a miss."""

from __future__ import annotations

import pytest

from openhcs_nb.client import (
    ConnectionClosed,
    RemoteTimeout,
    RemoteUnknownExecution,
    ServerLost,
    ServerUnavailable,
)
from openhcs_nb.client._heartbeat import Heartbeat, lost_error
from openhcs_nb.protocol import Status


class Questions:
    """Stands in for the transport: keeps each question and its handlers."""

    def __init__(self) -> None:
        self.sent: list[tuple[object, float, object, object]] = []

    def send(self, message, buffers, timeout, on_reply, on_error) -> None:
        self.sent.append((message, timeout, on_reply, on_error))

    def answer(self) -> None:
        self.sent[-1][2](object(), [])

    def fail(self, error: BaseException) -> None:
        self.sent[-1][3](error)


def beat(live: list[str], misses: int = 3) -> tuple[Heartbeat, Questions, list]:
    lost: list[float] = []
    heartbeat = Heartbeat(
        live=lambda: live, on_lost=lost.append, interval=5.0, misses=misses
    )
    questions = Questions()
    heartbeat.bind(questions)
    return heartbeat, questions, lost


def test_when_nothing_is_followed_then_no_question_is_sent():
    heartbeat, questions, _ = beat([])
    for now in range(0, 60, 5):
        heartbeat.on_tick(float(now))
    assert questions.sent == []


def test_when_runs_are_live_then_status_is_asked_once_per_interval():
    heartbeat, questions, _ = beat(["ex-1", "ex-2"])
    heartbeat.on_tick(100.0)
    heartbeat.on_tick(101.0)  # still waiting for the answer
    questions.answer()
    heartbeat.on_tick(104.0)  # not due yet
    heartbeat.on_tick(105.0)
    assert len(questions.sent) == 2
    message, timeout, _, _ = questions.sent[0]
    assert message == Status(rid=0, execution_id="ex-1")
    assert timeout == 5.0


def test_when_misses_reach_the_count_then_the_server_is_lost_once():
    heartbeat, questions, lost = beat(["ex-1"], misses=3)
    for i, error in enumerate(
        [ServerUnavailable("link dropped"), RemoteTimeout("no reply")] * 2
    ):
        heartbeat.on_tick(100.0 + 5 * i)
        questions.fail(error)
        if i < 2:
            assert heartbeat.missed == i + 1
            assert lost == []
    assert len(lost) == 1  # the fourth miss began a new count
    assert heartbeat.missed == 1


def test_when_the_server_answers_or_refuses_then_the_count_starts_again():
    heartbeat, questions, lost = beat(["ex-1"], misses=3)
    for i, outcome in enumerate(["miss", "miss", "refuse", "miss", "miss", "answer"]):
        heartbeat.on_tick(100.0 + 5 * i)
        if outcome == "miss":
            questions.fail(RemoteTimeout("no reply"))
        elif outcome == "refuse":
            questions.fail(RemoteUnknownExecution("no such run"))
        else:
            questions.answer()
    assert lost == []
    assert heartbeat.missed == 0


def test_when_the_connection_closes_here_then_that_is_no_miss():
    heartbeat, questions, lost = beat(["ex-1"], misses=1)
    heartbeat.on_tick(100.0)
    questions.fail(ConnectionClosed("closed"))
    assert heartbeat.missed == 0
    assert lost == []


def test_when_the_error_is_built_then_it_names_address_silence_and_reattach():
    error = lost_error("tcp://127.0.0.1:5555", 15.2, "ex-9")
    assert isinstance(error, ServerLost)
    assert isinstance(error, ServerUnavailable)
    assert str(error) == (
        "server lost: tcp://127.0.0.1:5555 did not answer for 15 s; once it is "
        "back, reattach with conn.attach('ex-9') "
        "(or openhcs_nb.connect('tcp://127.0.0.1:5555').attach('ex-9'))"
    )


def test_when_the_settings_make_no_sense_then_heartbeat_refuses_them():
    with pytest.raises(ValueError, match="interval > 0"):
        Heartbeat(live=list, on_lost=print, interval=0, misses=3)


def test_when_connect_gets_a_bad_heartbeat_then_it_refuses_before_connecting():
    from openhcs_nb.client import connect

    with pytest.raises(ValueError, match="misses >= 1"):
        connect("tcp://127.0.0.1:1", heartbeat_misses=0)
