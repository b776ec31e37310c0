"""Jupyter widget fixtures: a scripted execution and a real server connection.

``ScriptedExecution`` stands in for ``openhcs_nb.client.Execution`` where the
server would add nothing but waiting: it has the same attributes the widgets
use, and, like the client, runs callbacks in order on a thread of its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from openhcs_nb.client import WellEvent

SMALL = "small.ome.zarr"


class ScriptedExecution:
    """Emits WellEvents to ``on_well`` callbacks from a callback thread."""

    def __init__(self, wells: tuple[str, ...] = (), plate: str = "plate") -> None:
        self.id = "ex-scripted"
        self.plate = plate
        self.requested_wells = wells
        self.state = "running"
        self.error: str | None = None
        self.cancel_calls = 0
        self._events: list[WellEvent] = []
        self._well_callbacks: list[Callable[[WellEvent], Any]] = []
        self._done_callbacks: list[Callable[[Any], Any]] = []
        self._queue: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._queue.get()()

    @property
    def progress(self) -> tuple[int, int, int]:
        failed = sum(1 for e in self._events if e.status == "failed")
        return len(self._events) - failed, failed, len(self.requested_wells)

    @property
    def wells(self) -> dict[str, WellEvent]:
        return {e.well: e for e in self._events}

    @property
    def failed_wells(self) -> dict[str, str]:
        return {e.well: str(e.error) for e in self._events if e.status == "failed"}

    def on_well(self, callback: Callable[[WellEvent], Any]) -> Callable:
        seen = list(self._events)
        self._well_callbacks.append(callback)
        for event in seen:
            self._queue.put(lambda event=event: callback(event))
        return callback

    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        self._done_callbacks.append(fn)

    def emit(self, event: WellEvent) -> None:
        self._events.append(event)
        for callback in list(self._well_callbacks):
            self._queue.put(lambda cb=callback: cb(event))

    def finish(self, state: str = "done", error: str | None = None) -> None:
        self.state, self.error = state, error
        for fn in self._done_callbacks:
            self._queue.put(lambda fn=fn: fn(self))

    def cancel(self) -> bool:
        self.cancel_calls += 1
        self.finish("cancelled")
        return True

    def drain(self) -> None:
        """Return once every callback queued so far has run."""
        ran = threading.Event()
        self._queue.put(ran.set)
        assert ran.wait(10)


def done_event(
    well: str, seed: int = 0, size: int = 32, seq: int = 1, count: int = 3
) -> WellEvent:
    """A finished well with two channels, a labels layer and a summary."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    labels[4:12, 4:12] = 1
    labels[16:28, 10:20] = 2
    return WellEvent(
        well=well,
        status="done",
        summary={"count": count, "area_mean": 80.0 + seed},
        previews={
            "image/DAPI": rng.integers(0, 4000, (size, size)).astype(np.uint16),
            "image/GFP": rng.integers(0, 200, (size, size)).astype(np.uint16),
            "labels/nuclei": labels,
        },
        seq=seq,
    )


def failed_event(well: str, seq: int = 1) -> WellEvent:
    return WellEvent(
        well=well,
        status="failed",
        error="ValueError: no nuclei",
        traceback='Traceback (most recent call last):\n  File "x.py"\nValueError',
        seq=seq,
    )


@pytest.fixture
def scripted() -> Callable[..., ScriptedExecution]:
    return ScriptedExecution


@pytest.fixture
def conn(demo_server):
    from openhcs_nb.client import connect

    connection = connect(demo_server.address, timeout=10.0)
    yield connection
    connection.close()


class Events:
    """Builders of real WellEvents, handed to tests as a fixture."""

    done = staticmethod(done_event)
    failed = staticmethod(failed_event)


@pytest.fixture
def events() -> type[Events]:
    return Events
