"""Run a pipeline on this machine: a process pool with one task per well.

Workers receive the plan and the plate reference, never pixel arrays, and write
their well's outputs into the results store themselves. The pool uses the
``forkserver`` start method so it is safe to call from a Jupyter kernel, whose
threads make a plain ``fork`` unsafe.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from openhcs_nb._progress import Progress, make_bar
from openhcs_nb.errors import ExecutionError
from openhcs_nb.execution import plate_phase
from openhcs_nb.execution._pool_context import pool_context
from openhcs_nb.execution._store_io import store_layout
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.well import WellResult, run_well
from openhcs_nb.execution.worker_limits import WorkerLimits, apply_limits, usable_cores
from openhcs_nb.pipeline.model import Pipeline
from openhcs_nb.plates import open_plate
from openhcs_nb.plates.model import Plate
from openhcs_nb.results.store import Results, ResultsStore

WellCallback = Callable[[WellResult], None]


def default_workers() -> int:
    """One worker per CPU this process may use."""
    return usable_cores()


def run_local(
    pipeline: Pipeline,
    plate: Plate | str | Path,
    workers: int | None = None,
    out: str | Path | None = None,
    wells: Sequence[str] | None = None,
    on_well: WellCallback | None = None,
    dask: Any = None,
    progress: Progress = None,
) -> Results:
    """Run ``pipeline`` on ``plate`` in local worker processes.

    ``workers=0`` runs in this process (handy under a debugger). Each finished
    well is passed to ``on_well`` in the order wells complete. ``dask`` hands
    the wells to Dask instead: ``True`` for a local cluster of ``workers``
    processes, or a ``distributed.Client`` / scheduler address.

    ``progress`` counts finished wells on a bar: by default a ``tqdm.auto``
    bar in a notebook or terminal and none elsewhere; ``True``/``False``
    force it, and a ``factory(total, description)`` makes its own bar
    (:mod:`openhcs_nb._progress`).

    Raises
    ------
    CompileError
        The pipeline does not fit the plate; no well is run.
    UnknownPlateError, UnknownWellError
        The plate or a requested well does not exist.
    ExecutionError
        The worker processes could not start or died (the message says why).
    """
    _refuse_in_bootstrapping_worker()
    source = open_plate(plate)
    plan = compile_pipeline(pipeline, source, wells)
    path = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="openhcs-"))
    store = ResultsStore(path)
    store.create(store_layout(plan))
    bar = make_bar(progress, len(plan.wells), source.name)

    def finished(result: WellResult) -> None:
        bar.update(1)
        if on_well is not None:
            on_well(result)

    try:
        if dask is not None and dask is not False:
            from openhcs_nb.execution.dask_executor import execute_plan_dask

            cluster = None if dask is True else dask
            results = execute_plan_dask(plan, path, cluster, workers, finished)
        else:
            results = execute_plan(plan, path, workers, finished)
    finally:
        bar.close()
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
        _plate_phase(plan, out, map)
        for well in plan.wells:
            finish(run_well(plan, well, out, preview_size))
        return done
    pool = ProcessPoolExecutor(
        max_workers=n,
        mp_context=pool_context(),
        initializer=apply_limits,
        initargs=(WorkerLimits.share(n),),
    )
    try:
        with pool:
            _plate_phase(plan, out, pool.map)
            pending: set[Future[WellResult]] = {
                pool.submit(run_well, plan, well, str(out), preview_size)
                for well in plan.wells
            }
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(future.result())
    except BrokenProcessPool:
        raise ExecutionError(broken_pool_message()) from None
    return done


def _plate_phase(plan: ExecutionPlan, out: Path, mapper: Callable[..., Any]) -> None:
    """Fit the plan's flat fields first, when it has a plate-level phase.

    Wells whose contribution is already on disk are not read again.
    """
    if plan.plate_phase is None or plate_phase.is_fitted(out):
        return
    missing = plate_phase.missing_wells(plan, out)
    count = len(missing)
    list(
        mapper(
            plate_phase.contribute_or_skip, [plan] * count, missing, [str(out)] * count
        )
    )
    plate_phase.fit(plan, out)


def broken_pool_message() -> str:
    """Why the worker pool broke, in one line a script's author can act on."""
    main = sys.modules.get("__main__")
    if getattr(main, "__file__", None) and not hasattr(sys, "ps1"):
        return (
            "the worker processes could not start: each one re-imports your "
            f"script {Path(main.__file__).name!r}, so the code that calls "  # type: ignore[union-attr]
            "run_local must sit under 'if __name__ == \"__main__\":'"
        )
    return "a worker process died (out of memory, or killed); see the system log"


def _refuse_in_bootstrapping_worker() -> None:
    """Stop quietly when a worker re-runs an unguarded script's top level.

    A forkserver child imports the parent's script as ``__mp_main__``; without
    the ``__main__`` guard that calls :func:`run_local` again, which would
    print a long traceback per worker. The parent explains it instead.
    """
    # Only a multiprocessing child names the re-imported script __mp_main__.
    if sys._getframe(2).f_globals.get("__name__") == "__mp_main__":
        raise SystemExit(1)
