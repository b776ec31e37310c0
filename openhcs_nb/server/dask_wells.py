"""Wells on a Dask ``distributed`` cluster, behind the scheduler's runner seam.

With ``[execution] executor = "dask"`` the server connects one
``distributed.Client`` at start and offers ``dask_wells_in_flight``
:class:`DaskSlot` runners to its scheduler. Each slot submits one task at a
time, so the server, not Dask, decides which user's well goes next, and the
cluster never holds more than that many of the server's wells.

Rules:

- A task carries the plan, the well and the results path, never pixels: the
  Dask worker reopens the plate (cached per process) and writes into the
  results store itself, so workers must see the same paths (a shared
  filesystem, as on a Slurm cluster). Only the summary and small previews
  come back.
- **Cancel** sets a Dask ``Event`` named after the task; a watcher thread
  beside the running task raises :class:`~.workers.TaskCancelled` into it at
  the next Python instruction (between NumPy calls), as SIGUSR1 does in the
  server's own workers. A task still queued on the cluster sees the event
  the moment it starts.
- **Time limits**: past ``timeout`` the task is cancelled the same way and
  released after ``grace``; a task stuck in one long C call keeps its Dask
  thread until the call returns (threads cannot be killed), but the well is
  recorded ``well_timeout`` at once.
- **A lost worker**: Dask itself reruns a task whose worker died (up to the
  scheduler's ``distributed.scheduler.allowed-failures``); when it gives up,
  the well fails with ``worker_lost`` and the plate goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import traceback
import uuid
from typing import Any

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.server._config_sections import ExecutionSection
from openhcs_nb.server.well_executor import WellExecutor
from openhcs_nb.server.workers import PhaseTask, TaskCancelled, TaskTimedOut, WellTask

log = logging.getLogger(__name__)
_WATCH_EVERY_S = 0.5


class DaskUnavailableError(OpenHCSError):
    """The Dask scheduler of ``[execution] dask_scheduler`` cannot be used."""

    code = "executor_unavailable"


def connect_dask(execution: ExecutionSection) -> WellExecutor:
    """Connect to the configured scheduler and make the server's slots.

    Raises
    ------
    DaskUnavailableError
        ``distributed`` is not installed, or the scheduler did not answer
        within ``dask_connect_timeout_s``; the message names the address.
    """
    address = execution.dask_scheduler
    try:
        from distributed import Client
    except ImportError as exc:
        raise DaskUnavailableError(
            "[execution] executor = 'dask' needs the dask extra: "
            "pip install 'openhcs-nb[dask]'"
        ) from exc
    timeout = execution.dask_connect_timeout_s
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DaskUnavailableError(
            f"cannot reach the Dask scheduler at {address} "
            f"([execution] dask_scheduler) within {timeout:g} s: {exc}"
        ) from None
    slots = [DaskSlot(i, client) for i in range(execution.dask_wells_in_flight)]
    url = dashboard_url(client)
    log.info(
        "executing on Dask at %s: %d wells in flight, dashboard %s",
        address,
        len(slots),
        url or "off",
    )

    def close() -> None:
        with contextlib.suppress(Exception):
            client.close(timeout=5)

    return WellExecutor(slots, kind="dask", dashboard_url=url, close=close)


def dashboard_url(client: Any) -> str | None:
    """The scheduler's dashboard as Dask formats it, or None when it has none.

    Dask's ``distributed.dashboard.link`` template (in the server's Dask
    config) decides the form; the notebook may rewrite it for a proxy.
    """
    from distributed.utils import format_dashboard_link

    try:
        port = client.scheduler_info()["services"]["dashboard"]
    except (KeyError, TypeError, OSError):
        return None
    host = str(client.scheduler.address).split("://", 1)[-1].rsplit(":", 1)[0]
    return format_dashboard_link(host, port)


class DaskSlot:
    """One well in flight on the cluster; used by one dispatcher thread."""

    def __init__(self, index: int, client: Any) -> None:
        self.index = index
        self.device = "dask"
        self._client = client
        self._lock = threading.Lock()
        self._current: tuple[Any, str] | None = None
        self._cancelled = False

    def run(
        self, task: Any, timeout: float | None = None, grace: float = 5.0
    ) -> tuple[str, Any]:
        """Submit ``task`` to the cluster and wait for its outcome.

        Returns ("ok", result), ("cancelled", None) or ("error", (kind,
        message, traceback)); ``worker_lost`` when Dask gave up on the task
        after its workers died, ``executor_lost`` when the scheduler went away,
        ``executor_error`` when the cluster refused the task (e.g. unpicklable).

        Raises
        ------
        TaskTimedOut
            The task ran past ``timeout``; it was cancelled on the cluster.
        """
        from distributed.scheduler import KilledWorker

        key = f"openhcs-{_kind(task)}-{task.well}-{uuid.uuid4().hex}"
        cancel = f"{key}-cancel"
        future = self._client.submit(
            _run_on_dask, task, cancel, key=key, pure=False, retries=0
        )
        with self._lock:
            self._current, self._cancelled = (future, cancel), False
        try:
            try:
                return future.result(timeout=timeout or None)
            except TimeoutError:
                self._interrupt(future, cancel, grace)
                raise TaskTimedOut(timeout or 0.0) from None
            except KilledWorker as exc:
                text = f"the Dask workers running {task.well} died; {exc}"
                return "error", ("worker_lost", text, "")
            except Exception as exc:  # cancelled, the cluster lost, or unsendable
                if self._cancelled:
                    return "cancelled", None
                if self._client.status != "running":
                    text = f"lost the Dask scheduler while running {task.well}: {exc}"
                    return "error", ("executor_lost", text, "")
                text = (
                    f"the Dask cluster could not run {task.well}: "
                    f"{type(exc).__name__}: {exc}"
                )
                return "error", ("executor_error", text, "")
        finally:
            with self._lock:
                self._current = None
            self._forget(cancel)

    def _interrupt(self, future: Any, cancel: str, grace: float) -> None:
        """Ask the task to stop, wait ``grace`` for it, then let it go."""
        self._signal(cancel)
        with contextlib.suppress(Exception):
            future.result(timeout=max(grace, 0.1))
        future.cancel()

    def cancel_current(self) -> None:
        """Interrupt the task this slot waits for (safe from any thread)."""
        with self._lock:
            current = self._current
            self._cancelled = current is not None
        if current is not None:
            self._signal(current[1])

    def _signal(self, name: str) -> None:
        from distributed import Event

        try:
            Event(name, client=self._client).set()
        except Exception:  # the scheduler is gone: the task is gone with it
            log.warning("could not signal %s to the Dask cluster", name)

    def _forget(self, name: str) -> None:
        """Drop the task's cancel event from the scheduler."""
        from distributed import Event

        with contextlib.suppress(Exception):
            Event(name, client=self._client).clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what this slot runs; the shared client is closed by its owner."""
        self.cancel_current()


def _kind(task: Any) -> str:
    if isinstance(task, WellTask):
        return "well"
    return "phase" if isinstance(task, PhaseTask) else "preview"


def _run_on_dask(task: Any, cancel: str) -> tuple[str, Any]:
    """Runs on a Dask worker: compute ``task`` unless ``cancel`` is set.

    The outcome has the shape a server worker replies with, so the scheduler
    records it the same way.
    """
    from distributed import Event, get_client

    from openhcs_nb.server.workers import run_task

    event = Event(cancel, client=get_client())
    watch = _Watch(event, threading.get_ident())
    try:
        watch.start()
        try:
            result = run_task(task)
        finally:
            watch.stop()
    except TaskCancelled:
        return "cancelled", None
    except Exception as exc:
        return "error", (type(exc).__name__, str(exc), traceback.format_exc())
    return "ok", result


class _Watch:
    """Raises TaskCancelled in a thread once a Dask Event is set."""

    def __init__(self, event: Any, target: int) -> None:
        self._event = event
        self._target = target
        self._lock = threading.Lock()
        self._done = False
        self._fired = False
        self._thread = threading.Thread(
            target=self._loop, name="openhcs-cancel-watch", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                set_now = self._event.wait(timeout=_WATCH_EVERY_S)
            except Exception:  # the cluster went away; nothing to watch
                return
            with self._lock:
                if self._done:
                    return
                if set_now:
                    self._fired = True
                    _raise_in(self._target, TaskCancelled)
                    return

    def stop(self) -> None:
        """The task ended: no interrupt may land after this returns."""
        with self._lock:
            self._done = True
            fired = self._fired
        if fired:
            _raise_in(self._target, None)  # drop one still pending
            raise TaskCancelled


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Schedule ``exc`` in another thread (None clears a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None
    )
