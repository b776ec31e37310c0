"""Which progress bar long local work gets, watched or not."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from bar_recorder import BarRecorder

from openhcs_nb import _progress
from openhcs_nb._progress import LogBar, make_bar, watched


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_when_stderr_is_a_terminal_then_work_is_watched(monkeypatch):
    monkeypatch.delattr(sys, "ps1", raising=False)
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not watched()
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert watched()


def test_when_unwatched_and_not_asked_then_no_tqdm_bar(monkeypatch):
    monkeypatch.setattr(_progress, "watched", lambda: False)
    silent = make_bar(None, 3, "plate")
    assert not isinstance(silent, LogBar)
    assert "tqdm" not in type(silent).__module__
    assert isinstance(make_bar(None, 3, "plate", log_unwatched=True), LogBar)
    assert type(make_bar(True, 3, "plate")).__module__.startswith("tqdm")
    assert not type(make_bar(False, 3, "plate")).__module__.startswith("tqdm")


def test_when_a_factory_is_given_then_it_makes_the_bar():
    recorder = BarRecorder()
    bar = make_bar(recorder, 5, "plate")
    bar.update()
    assert recorder.bars[0].total == 5
    assert recorder.bars[0].description == "plate"
    assert recorder.bars[0].updates == [1]


def test_when_a_log_bar_advances_then_each_step_is_one_line(caplog):
    caplog.set_level(logging.INFO, logger="openhcs_nb")
    bar = LogBar(2, "generating x in /c")
    bar.update()
    bar.update()
    assert [r.getMessage() for r in caplog.records] == [
        "generating x in /c: 1/2 wells",
        "generating x in /c: 2/2 wells",
    ]


@pytest.mark.parametrize("asked", [True, None])
def test_when_tqdm_bar_is_made_then_it_counts_wells(asked, monkeypatch):
    monkeypatch.setattr(_progress, "watched", lambda: True)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = make_bar(asked, 4, "plate")
    bar.update(4)
    assert (bar.n, bar.total, bar.unit) == (4, 4, "well")  # type: ignore[attr-defined]
    bar.close()
