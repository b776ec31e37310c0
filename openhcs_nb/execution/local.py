"""Run a pipeline on this machine: a process pool with one task per well.

Workers receive the plan and the plate reference, never pixel arrays, and write
their well's outputs into the results store themselves. The pool uses the
``forkserver`` start method so it is safe to call from a Jupyter kernel, whose
threads make a plain ``fork`` unsafe.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.well import WellResult, run_well
from openhcs_nb.pipeline.model import Pipeline
from openhcs_nb.plates import open_plate
from openhcs_nb.plates.model import Plate
from openhcs_nb.results.store import Results, ResultsStore

WellCallback = Callable[[WellResult], None]


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def pool_context() -> multiprocessing.context.BaseContext:
    """A start method that is safe in threaded parents (kernels, servers)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["openhcs_nb.execution.well"])
    return ctx


def run_local(
    pipeline: Pipeline,
    plate: Plate | str | Path,
    workers: int | None = None,
    out: str | Path | None = None,
    wells: Sequence[str] | None = None,
    on_well: WellCallback | None = None,
    dask: Any = None,
) -> Results:
    """Run ``pipeline`` on ``plate`` in local worker processes.

    ``workers=0`` runs in this process (handy under a debugger). Each finished
    well is passed to ``on_well`` in the order wells complete. ``dask`` hands
    the wells to Dask instead: ``True`` for a local cluster of ``workers``
    processes, or a ``distributed.Client`` / scheduler address.

    Raises
    ------
    CompileError
        The pipeline does not fit the plate; no well is run.
    UnknownPlateError, UnknownWellError
        The plate or a requested well does not exist.
    """
    source = open_plate(plate)
    plan = compile_pipeline(pipeline, source, wells)
    path = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="openhcs-"))
    store = ResultsStore(path)
    store.create(plan)
    if dask is not None and dask is not False:
        from openhcs_nb.execution.dask_executor import execute_plan_dask

        cluster = None if dask is True else dask
        results = execute_plan_dask(plan, path, cluster, workers, on_well)
    else:
        results = execute_plan(plan, path, workers, on_well)
    return store.finalize(results)


def execute_plan(
    plan: ExecutionPlan,
    out: Path,
    workers: int | None = None,
    on_well: WellCallback | None = None,
    preview_size: int = 0,
) -> list[WellResult]:
    """Run every well of ``plan`` and return their results in completion order."""
    n = default_workers() if workers is None else workers
    done: list[WellResult] = []

    def finish(result: WellResult) -> None:
        done.append(result)
        if on_well is not None:
            on_well(result)

    if n == 0:
        for well in plan.wells:
            finish(run_well(plan, well, out, preview_size))
        return done
    with ProcessPoolExecutor(max_workers=n, mp_context=pool_context()) as pool:
        pending: set[Future[WellResult]] = {
            pool.submit(run_well, plan, well, str(out), preview_size)
            for well in plan.wells
        }
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                finish(future.result())
    return done
