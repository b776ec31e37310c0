"""The seam between the scheduler and whatever computes wells.

The scheduler runs one dispatcher thread per :class:`WellRunner` and never asks
what kind it is: a runner is a slot that computes one task at a time. The
server's own worker processes are runners (:class:`~.workers.Worker`), and so
are the slots of a Dask cluster (:class:`~.dask_wells.DaskSlot`); the number
of runners is the number of wells in flight, which is how the server keeps a
Dask cluster from receiving a whole plate at once.

A runner's contract, shared by both kinds:

- ``run(task, timeout, grace)`` blocks until the task ends and returns
  ``("ok", result)``, ``("cancelled", None)`` or
  ``("error", (kind, message, traceback))``; past ``timeout`` it raises
  :class:`~.workers.TaskTimedOut` once the task was stopped (or abandoned
  after ``grace``).
- ``cancel_current()`` interrupts whatever the runner computes now, from any
  thread; ``stop(timeout)`` releases it for good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from openhcs_nb.server._config_sections import ExecutionSection


class WellRunner(Protocol):
    """One slot the scheduler hands tasks to, one at a time."""

    index: int
    device: str

    def run(
        self, task: Any, timeout: float | None = None, grace: float = 5.0
    ) -> tuple[str, Any]:
        """Compute ``task``; see the module docstring for the outcomes."""
        ...

    def cancel_current(self) -> None:
        """Interrupt the task running now, if any."""
        ...

    def stop(self, timeout: float = 5.0) -> None:
        """Release the slot (stop the process, drop the Dask task)."""
        ...


@dataclass
class WellExecutor:
    """The runners of one server and what the notebook may learn about them.

    ``dashboard_url`` is the Dask dashboard, when the cluster has one;
    ``close`` releases what the runners share (the Dask client).
    """

    runners: Sequence[WellRunner]
    kind: str = "local"
    dashboard_url: str | None = None
    close: Callable[[], None] = field(default=lambda: None)


def start_executor(
    execution: ExecutionSection, memory_bytes: int | None = None
) -> WellExecutor:
    """Start the runners ``[execution]`` asks for.

    Raises
    ------
    DaskUnavailableError
        ``executor = "dask"`` and the scheduler cannot be reached (or the
        ``dask`` extra is missing); the server does not start.
    """
    if getattr(execution, "executor", "local") == "dask":
        from openhcs_nb.server.dask_wells import connect_dask

        return connect_dask(execution)
    from openhcs_nb.server.workers import start_workers

    workers = start_workers(
        execution.workers, [str(g) for g in execution.gpus], memory_bytes
    )
    return WellExecutor(workers)
