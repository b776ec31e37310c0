"""The OpenHCS side of ``bench_peer.py``; runs with OpenHCS's own interpreter.

This file imports only OpenHCS and the standard library, so it runs inside the
scratch venv where ``openhcs==0.8.6`` is installed (never in ours). Two
commands, each printing one JSON line on stdout:

``generate PLATE --wells N --size S --seed K``
    Write an ImageXpress plate with OpenHCS's ``SyntheticMicroscopyGenerator``
    (2x2 fields, 2 channels, one z-plane; ``num_cells`` grows with the tile
    area, at least the generator's default of 50).
``run PLATE OUT --workers W``
    Run OpenHCS's pipeline headless: ``stack_percentile_normalize`` then
    ``count_cells_single_channel`` (threshold detection) on channel 1 of every
    field, and report the cell count per well from its materialised results.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import queue
import sys
import threading
import time
from pathlib import Path

MIN_AREA = 20
MAX_AREA = 2000
LOW, HIGH = 1.0, 99.0


def generate(plate: Path, wells: int, size: int, seed: int) -> dict[str, object]:
    """Write the synthetic plate with OpenHCS's own generator."""
    from openhcs.demo.synthetic_data import SyntheticMicroscopyGenerator

    names = [f"{'ABCDEFGH'[i // 12]}{i % 12 + 1:02d}" for i in range(wells)]
    generator = SyntheticMicroscopyGenerator(
        str(plate),
        grid_size=(2, 2),
        tile_size=(size, size),
        wavelengths=2,
        z_stack_levels=1,
        num_cells=max(50, size * size // 2000),
        wells=names,
        random_seed=seed,
    )
    generator.generate_dataset()
    return {"wells": names}


def _pipeline() -> list[object]:
    from openhcs.constants.constants import VariableComponents
    from openhcs.core.config import LazyProcessingConfig
    from openhcs.core.steps.function_step import FunctionStep
    from openhcs.processing.backends.analysis.cell_counting_cpu import (
        DetectionMethod,
        count_cells_single_channel,
    )
    from openhcs.processing.backends.processors.numpy_processor import (
        stack_percentile_normalize,
    )

    sites = LazyProcessingConfig(variable_components=[VariableComponents.SITE])
    return [
        FunctionStep(
            func=(
                stack_percentile_normalize,
                {"low_percentile": LOW, "high_percentile": HIGH},
            ),
            name="normalize",
            processing_config=sites,
        ),
        FunctionStep(
            func={
                "1": (
                    count_cells_single_channel,
                    {
                        "detection_method": DetectionMethod.THRESHOLD,
                        "min_cell_area": MIN_AREA,
                        "max_cell_area": MAX_AREA,
                        "enable_preprocessing": False,
                    },
                )
            },
            name="count",
            processing_config=sites,
        ),
    ]


def run(plate: Path, out: Path, workers: int) -> dict[str, object]:
    """Run the pipeline on every well with ``workers`` processes; time it."""
    from objectstate.lazy_factory import ensure_global_config_context
    from openhcs.core.config import (
        GlobalPipelineConfig,
        LazyPathPlanningConfig,
        PipelineConfig,
    )
    from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
    from openhcs.core.progress import set_progress_queue

    started = time.perf_counter()
    global_config = GlobalPipelineConfig(num_workers=workers)
    ensure_global_config_context(GlobalPipelineConfig, global_config)
    config = PipelineConfig(
        path_planning_config=LazyPathPlanningConfig(global_output_folder=out)
    )
    orchestrator = PipelineOrchestrator(plate, pipeline_config=config)
    orchestrator.initialize()
    steps = _pipeline()
    context = multiprocessing.get_context(
        global_config.multiprocessing_start_method.value
    )
    progress = context.Queue()
    drain = threading.Thread(target=_drain, args=(progress,), daemon=True)
    drain.start()
    set_progress_queue(progress)
    try:
        bundle = orchestrator.compile_pipelines(pipeline_definition=steps)
    finally:
        set_progress_queue(None)
    results = orchestrator.execute_compiled_plate(
        execution_bundle=bundle,
        progress_queue=progress,
        progress_context={
            "execution_id": f"bench-peer-{time.time_ns()}",
            "plate_id": str(plate),
            "axis_id": "",
        },
    )
    seconds = time.perf_counter() - started
    failed = {str(k): str(v) for k, v in results.items() if not _ok(v)}
    return {"seconds": seconds, "failed": failed, "counts": _counts(out)}


def _drain(progress: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """OpenHCS requires a progress queue; nobody reads it here, so empty it."""
    while True:
        try:
            progress.get(timeout=1.0)
        except queue.Empty:
            continue
        except (EOFError, OSError, ValueError):
            return


def _ok(result: object) -> bool:
    status = getattr(result, "status", None) or getattr(result, "is_success", None)
    if callable(status):
        status = status()
    return str(status).lower() not in ("false", "error", "failed", "failure")


def _counts(out: Path) -> dict[str, int]:
    """Cells per well, summed over fields, from the ``*_cell_counts_*.csv`` files."""
    counts: dict[str, int] = {}
    for path in sorted(out.rglob("*cell_counts*details.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                well = row.get("well") or path.name.split("_")[0]
                counts[well] = counts.get(well, 0) + int(row.get("cell_count") or 0)
    return counts


def main(argv: list[str] | None = None) -> int:
    """Dispatch a command and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("plate", type=Path)
    gen.add_argument("--wells", type=int, default=4)
    gen.add_argument("--size", type=int, default=512)
    gen.add_argument("--seed", type=int, default=0)
    go = sub.add_parser("run")
    go.add_argument("plate", type=Path)
    go.add_argument("out", type=Path)
    go.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "generate":
        result = generate(args.plate, args.wells, args.size, args.seed)
    else:
        result = run(args.plate, args.out, args.workers)
    sys.stdout.flush()
    print("PEER-RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
