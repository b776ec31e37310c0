"""A scheduler with stand-in workers and a job store that can fill up.

The dispatcher threads, the policy, the job store and the results store are the
real ones; only the worker processes are replaced, so a test decides what each
well returns (or raises) and sees the order wells were handed out in.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.execution._store_io import store_layout
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.well import WellResult
from openhcs_nb.protocol import Finished, decode_event
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server.jobs import JobStore, StoredEvent
from openhcs_nb.server.scheduler import ActiveExecution, Scheduler, SchedulerLimits

Outcome = Callable[[Any], tuple[str, Any]]


def ok(task: Any) -> tuple[str, Any]:
    """A well that finished with one object."""
    return "ok", WellResult(task.well, {"count": 1})


class FakeWorker:
    """Stands in for a worker process; ``outcome(task)`` decides each well."""

    def __init__(self, index: int, outcome: Outcome = ok) -> None:
        self.index = index
        self.device = "cpu"
        self.outcome = outcome
        self.ran: list[str] = []

    def run(
        self, task: Any, timeout: float | None = None, grace: float = 5.0
    ) -> tuple[str, Any]:
        self.ran.append(task.well)
        return self.outcome(task)

    def cancel_current(self) -> None:
        pass


class FillingStore(JobStore):
    """A job store whose writes fail like a full disk while ``full`` is set."""

    def __init__(self, path: Path) -> None:
        self.full = threading.Event()
        self.refused = 0
        super().__init__(path)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.full.is_set():
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")
        with super()._write() as db:
            yield db


class Harness:
    """A started scheduler over ``workers``, plus what it published."""

    def __init__(
        self,
        tmp_path: Path,
        plate: Any,
        workers: list[FakeWorker],
        *,
        max_concurrent: int = 2,
        limits: SchedulerLimits | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.plate = plate
        self.store = FillingStore(tmp_path / "jobs.sqlite3")
        self.events: list[StoredEvent] = []
        self._cond = threading.Condition()
        self.scheduler = Scheduler(
            self.store,
            workers,  # type: ignore[arg-type]
            max_concurrent,
            self._publish,
            limits,
            retry_every_s=0.05,
        )
        self.scheduler.start()

    def _publish(self, stored: StoredEvent) -> None:
        with self._cond:
            self.events.append(stored)
            self._cond.notify_all()

    def submit(self, user: str, wells: list[str]) -> ActiveExecution:
        """Store, lay out and queue one execution, as the handlers do."""
        plan = compile_pipeline(nuclei_count_pipeline(), self.plate, wells)
        record = self.store.create_execution(user, "small", "", wells, {})
        out = self.tmp_path / record.id
        ResultsStore(out).create(store_layout(plan), {})
        active = ActiveExecution(
            record.id, user, plan, out, 0, deque(plan.wells), len(plan.wells)
        )
        self.scheduler.enqueue(active)
        return active

    def finished(self, execution_id: str, timeout: float = 30.0) -> Finished:
        """Wait for the execution's Finished event and return it."""
        with self._cond:
            got = self._cond.wait_for(
                lambda: self._finished_of(execution_id) is not None, timeout
            )
            assert got, f"no Finished event for {execution_id}"
            return self._finished_of(execution_id)  # type: ignore[return-value]

    def finished_count(self, execution_id: str) -> int:
        with self._cond:
            return sum(
                1
                for e in self.events
                if e.execution_id == execution_id and e.kind == "finished"
            )

    def _finished_of(self, execution_id: str) -> Finished | None:
        for stored in self.events:
            if stored.execution_id == execution_id and stored.kind == "finished":
                event, _ = decode_event([stored.payload])
                return event  # type: ignore[return-value]
        return None

    def close(self) -> None:
        self.scheduler.stop(grace=5)
        self.store.close()
