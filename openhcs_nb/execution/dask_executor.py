"""Run a plan's wells on a Dask ``distributed`` cluster instead of a local pool.

For when one machine is not enough: the wells become Dask tasks, and each task
still receives only the plan and the well name (workers read pixels from the
plate themselves and write into the shared results store), so the cluster's
workers must see the same plate and results paths, as Slurm nodes on a shared
filesystem do. We do not schedule anything ourselves: Dask does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from openhcs_nb.errors import OptionalDependencyError
from openhcs_nb.execution import plate_phase
from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.well import WellResult, run_well


def execute_plan_dask(
    plan: ExecutionPlan,
    out: Path,
    cluster: Any = None,
    workers: int | None = None,
    on_well: Callable[[WellResult], None] | None = None,
    preview_size: int = 0,
) -> list[WellResult]:
    """Run every well of ``plan`` on Dask; results in completion order.

    ``cluster`` is a ``distributed.Client``, a scheduler address, or None for
    a temporary ``LocalCluster`` of ``workers`` single-threaded processes.

    Raises
    ------
    OptionalDependencyError
        The ``dask`` extra is not installed.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise OptionalDependencyError("running on Dask", "dask", "distributed") from exc
    local = None
    if isinstance(cluster, Client):
        client = cluster
    elif cluster is not None:
        client = Client(cluster)
    else:
        local = LocalCluster(
            n_workers=workers or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(local)
    try:
        if plan.plate_phase is not None and not plate_phase.is_fitted(out):
            missing = plate_phase.missing_wells(plan, out)
            parts = client.map(
                plate_phase.contribute_or_skip,
                [plan] * len(missing),
                missing,
                [str(out)] * len(missing),
                pure=False,
            )
            client.gather(parts)
            plate_phase.fit(plan, out)
        futures = [
            client.submit(run_well, plan, well, str(out), preview_size, pure=False)
            for well in plan.wells
        ]
        done: list[WellResult] = []
        for future in as_completed(futures):
            result = future.result()
            done.append(result)
            if on_well is not None:
                on_well(result)
        return done
    finally:
        if client is not cluster:
            client.close()
        if local is not None:
            local.close()
