"""Persistent worker processes, one per GPU or CPU slot.

Workers start once with the server and serve every execution, so a run pays no
spawn or import cost. Each worker is bound to one device: a GPU worker gets
``CUDA_VISIBLE_DEVICES`` set before anything imports CuPy.

The server talks to a worker over a private pipe (pickle between the server and
its own children; no client bytes are ever unpickled). A running task can be
interrupted: the server writes the task's serial into the worker's shared
``cancel`` slot and sends SIGUSR1; the worker raises :class:`TaskCancelled` only
if that serial is the task it is running, so a late signal never hits the next
task, and never mid-import (a half-imported module would break every later
task; it waits for the import to end). A worker that dies is replaced and its
task reported as failed; one that runs a task past its time limit is
interrupted the same way, and killed and replaced if it does not come back
within a short grace.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from openhcs_nb.execution._pool_context import pool_context
from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.worker_limits import WorkerLimits, apply_limits
from openhcs_nb.plates.model import Plate
from openhcs_nb.server.worker_health import WorkerHealth

log = logging.getLogger(__name__)


class TaskCancelled(BaseException):
    """Raised inside a worker when its current task is cancelled."""


class WorkerDied(RuntimeError):
    """The worker process exited while running a task."""


class TaskTimedOut(RuntimeError):
    """A task ran past its time limit; it was interrupted (or its worker replaced)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        super().__init__(f"task ran longer than {limit:g} s")


@dataclass(frozen=True)
class WellTask:
    """Process one well and write its outputs under ``out``."""

    plan: ExecutionPlan
    well: str
    out: str
    preview_size: int
    plate: Plate | None = None  # set for plates a worker cannot reopen by ref alone


@dataclass(frozen=True)
class PreviewTask:
    """Preview one field of one well after ``upto`` steps."""

    plan: ExecutionPlan
    well: str
    upto: int | None
    site: int
    max_size: int
    plate: Plate | None = None


@dataclass(frozen=True)
class PhaseTask:
    """Write one well's contribution to the plan's plate-level phase."""

    plan: ExecutionPlan
    well: str
    out: str
    plate: Plate | None = None


Task = WellTask | PreviewTask | PhaseTask


_IMPORT_RETRY_S = 0.05


def _importing() -> bool:
    """Whether a module is being imported right now (in this process)."""
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for module in list(sys.modules.values())
    )


def run_task(task: Task) -> Any:
    """Compute one task in this process: a server worker or a Dask worker."""
    from openhcs_nb.execution.plate_phase import contribute
    from openhcs_nb.execution.preview import preview_well
    from openhcs_nb.execution.well import run_well

    if isinstance(task, WellTask):
        return run_well(task.plan, task.well, task.out, task.preview_size, task.plate)
    if isinstance(task, PhaseTask):
        return contribute(task.plan, task.well, task.out, task.plate)
    return preview_well(
        task.plan, task.well, task.upto, task.site, task.max_size, task.plate
    )


def _worker_main(
    conn: Connection, device: str, cancel: Any, current: Any, limits: WorkerLimits
) -> None:
    if device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
    apply_limits(limits)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    running = [0]  # the serial being computed; 0 while idle or replying

    def on_cancel(signum: int, frame: object) -> None:
        if running[0] and cancel.value == running[0]:
            if _importing():
                # Raising mid-import would leave a half-initialised module that
                # breaks every later task: try again once the import is done.
                signal.setitimer(signal.ITIMER_REAL, _IMPORT_RETRY_S)
                return
            running[0] = 0
            raise TaskCancelled

    signal.signal(signal.SIGUSR1, on_cancel)
    signal.signal(signal.SIGALRM, on_cancel)
    import openhcs_nb.execution.plate_phase
    import openhcs_nb.execution.preview
    import openhcs_nb.execution.well  # noqa: F401  (imported before any cancel)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        serial, task = message
        current.value = serial
        reply: tuple[int, str, Any]
        try:
            running[0] = serial
            result = run_task(task)
            running[0] = 0
            reply = (serial, "ok", result)
        except TaskCancelled:
            reply = (serial, "cancelled", None)
        except Exception as exc:
            running[0] = 0
            trace = traceback.format_exc()
            reply = (serial, "error", (type(exc).__name__, str(exc), trace))
        current.value = 0
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class Worker:
    """One worker process and the pipe to it; used by one dispatcher thread."""

    def __init__(
        self,
        index: int,
        device: str,
        ctx: multiprocessing.context.BaseContext,
        limits: WorkerLimits | None = None,
    ) -> None:
        self.index = index
        self.device = device
        self.limits = limits or WorkerLimits()
        self._ctx = ctx
        self._serial = 0
        self._lock = threading.Lock()
        self._cancel = ctx.Value("q", 0, lock=False)
        self._current = ctx.Value("q", 0, lock=False)
        self.restarts = -1  # counts each replacement; the first start is not one
        self._start()

    def _start(self) -> None:
        self.restarts += 1
        parent, child = self._ctx.Pipe()
        self._conn = parent
        self.process = self._ctx.Process(
            target=_worker_main,
            args=(child, self.device, self._cancel, self._current, self.limits),
            name=f"openhcs-worker-{self.index}",
            daemon=True,
        )
        self.process.start()
        child.close()

    def run(
        self, task: Task, timeout: float | None = None, grace: float = 5.0
    ) -> tuple[str, Any]:
        """Run ``task`` and block until it ends, or until ``timeout`` seconds.

        Returns ("ok", result), ("cancelled", None) or
        ("error", (type, message, traceback)). A task past ``timeout`` (None or
        0: no limit) is interrupted like a cancel; a worker that is not back
        within ``grace`` seconds is killed and restarted.

        Raises
        ------
        TaskTimedOut
            The task ran past ``timeout``; the worker is idle (or new) again.
        WorkerDied
            The process exited mid-task; it has been restarted.
        """
        with self._lock:
            self._serial += 1
            serial = self._serial
        deadline = time.monotonic() + timeout if timeout else None
        try:
            self._conn.send((serial, task))
            while True:
                if deadline is not None and not self._wait(deadline):
                    self._interrupt(serial, grace)
                    raise TaskTimedOut(timeout or 0.0)
                got, status, payload = self._conn.recv()
                if got == serial:
                    return status, payload
        except (EOFError, OSError, BrokenPipeError) as exc:
            code = self.process.exitcode
            self.process.join(timeout=1)
            self._start()
            raise WorkerDied(
                f"worker {self.index} ({self.device}) died while running the task "
                f"(exit code {code})"
            ) from exc

    def _wait(self, deadline: float) -> bool:
        """Whether a reply arrived before ``deadline``."""
        return self._conn.poll(max(0.0, deadline - time.monotonic()))

    def _interrupt(self, serial: int, grace: float) -> None:
        """Stop task ``serial`` after a time-out: signal it, else kill the worker."""
        self._cancel.value = serial
        end = time.monotonic() + grace
        signalled = False
        while (left := end - time.monotonic()) > 0:
            # Signal only once the worker holds the task: before that its
            # handler may not be installed yet, and SIGUSR1 would kill it.
            if not signalled and self._current.value == serial:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGUSR1)  # type: ignore[arg-type]
                signalled = True
            if self._conn.poll(min(left, 0.05)):
                got, _, _ = self._conn.recv()
                if got == serial:  # back from the interrupt (or just finished)
                    return
        log.warning(
            "worker %d (%s) ignored the interrupt for %.1f s; restarting it",
            self.index,
            self.device,
            grace,
        )
        self.process.kill()
        self.process.join(timeout=5)
        self._conn.close()
        self._start()

    def health(self) -> WorkerHealth:
        """Whether the process is up, how often it was replaced, and its pid."""
        return WorkerHealth(
            self.index, self.process.is_alive(), self.restarts, self.process.pid
        )

    def cancel_current(self) -> None:
        """Interrupt whatever this worker is running now."""
        serial = self._current.value
        if serial:
            self._cancel.value = serial
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGUSR1)  # type: ignore[arg-type]

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)


def worker_devices(workers: int, gpus: Sequence[str]) -> list[str]:
    """One device per worker: GPUs round-robin when configured, else CPUs."""
    if gpus:
        return [f"cuda:{gpus[i % len(gpus)]}" for i in range(workers)]
    return ["cpu"] * workers


def start_workers(
    workers: int, gpus: Sequence[str], memory_bytes: int | None = None
) -> list[Worker]:
    """Start the server's worker processes (forkserver: safe with threads).

    Each gets an even share of the cores for its thread pools and
    ``memory_bytes`` (default: an even share of 80 % of RAM) as its memory cap.
    """
    ctx = pool_context()
    limits = WorkerLimits.share(workers, memory_bytes)
    devices = worker_devices(workers, gpus)
    return [Worker(i, d, ctx, limits) for i, d in enumerate(devices)]
