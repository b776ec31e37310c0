"""The GPU path, measured: device ÷ CPU per function, per step and per well.

Run ``python benchmarks/bench_gpu.py [--size 2048] [--repeats 3] [--fields 2]``.

1. Every device twin on a ``(fields, size, size)`` uint16 stack, timed three
   ways: the NumPy reference, the same twin code on NumPy (``xp=numpy``, the
   cost of the generic batched path on a CPU), and on CuPy when it exists.
2. The default pipeline (``openhcs_nb.default_pipeline()``) on one well of a
   synthetic ``size``² plate: each step and the whole well, compiled for the
   CPU, for ``cuda:0`` but run on the NumPy namespace, and on the GPU.
3. With CuPy, a whole remote run of the demo plate through a loopback server
   with one GPU worker ÷ the same server with one CPU worker.

Without CuPy or a CUDA device the GPU columns say so and the CPU side still
runs. BLAS is pinned to one thread, as in a worker process. The well runs
without a plate-level illumination fit (each field's own flat field), as a
preview does; the per-well ratios are what matter.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 - after pinning BLAS threads
import dataclasses  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from openhcs_nb import compile_pipeline, default_pipeline  # noqa: E402
from openhcs_nb import functions as fns  # noqa: E402
from openhcs_nb.execution.placement import transfers  # noqa: E402
from openhcs_nb.execution.runner import WellState, run_steps  # noqa: E402
from openhcs_nb.functions import _gpu  # noqa: E402
from openhcs_nb.functions._xp import NUMPY, ArrayNamespace  # noqa: E402


def gpu_namespace() -> tuple[ArrayNamespace | None, str]:
    """CuPy's namespace and a description, or None and why there is none."""
    try:
        from openhcs_nb.functions._xp import cupy_namespace

        ns = cupy_namespace()
        count = ns.xp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # missing package, driver or device
        return None, f"no GPU: {type(exc).__name__}: {exc}".splitlines()[0]
    if count < 1:
        return None, "no GPU: CuPy sees no CUDA device"
    name = ns.xp.cuda.runtime.getDeviceProperties(0)["name"]
    return ns, f"GPU 0: {name.decode() if isinstance(name, bytes) else name}"


def median_time(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync(ns: ArrayNamespace | None) -> Callable[[], None]:
    if ns is None:
        return lambda: None
    return lambda: ns.xp.cuda.Device().synchronize()


def _inputs(size: int, planes: int) -> dict[str, tuple[str, np.ndarray, dict]]:
    from bench_functions import synthetic_nuclei

    image = np.stack([synthetic_nuclei(size, seed)[0] for seed in range(planes)])
    mask = fns.threshold_otsu.impl(image)
    labels = fns.label_objects.impl(mask)
    return {
        "percentile_normalize": ("percentile_normalize", image, {}),
        "gaussian_blur": ("gaussian_blur", image, {"sigma": 2.0}),
        "subtract_background": ("subtract_background", image, {"radius": 50}),
        "correct_illumination": ("correct_illumination", image, {}),
        "threshold_otsu": ("threshold_otsu", image, {}),
        "threshold_li": ("threshold_li", image, {}),
        "fill_holes": ("fill_holes", mask, {}),
        "label_objects": ("label_objects", mask, {}),
        "remove_small_objects": ("remove_small_objects", labels, {"min_size": 30}),
        "expand_labels": ("expand_labels", labels, {"distance": 10}),
        "project_z": ("project_z", image, {}),
        "composite_channels": ("composite_channels", image, {}),
        # The planes as the channels of one field, measured in its objects.
        "measure_objects": ("measure_objects", image, {"labels": labels[0]}),
    }


def bench_functions(size: int, planes: int, repeats: int, gpu: Any) -> None:
    """Section 1: each twin ÷ its reference, on NumPy and on CuPy."""
    print(f"\n1. functions on a ({planes}, {size}, {size}) stack, median of {repeats}")
    print(f"{'function':22s} {'ref ms':>9s} {'xp=np ms':>9s} {'np÷ref':>7s}", end="")
    print(f" {'gpu ms':>9s} {'gpu÷ref':>8s}")
    for name, (fn, stack, kwargs) in _inputs(size, planes).items():
        twin = getattr(_gpu, fn)
        reference = functools.partial(getattr(fns, fn).impl, stack, **kwargs)
        ref = median_time(reference, repeats, _sync(None))
        generic = median_time(
            functools.partial(twin, stack, **kwargs), repeats, _sync(None)
        )
        line = f"{name:22s} {ref * 1e3:9.1f} {generic * 1e3:9.1f} {generic / ref:7.2f}"
        if gpu is not None:
            moved = {
                k: gpu.to_device(v) if isinstance(v, np.ndarray) else v
                for k, v in kwargs.items()
            }
            on_device = functools.partial(twin, gpu.to_device(stack), **moved)
            dev = median_time(on_device, repeats, _sync(gpu))
            line += f" {dev * 1e3:9.1f} {dev / ref:8.3f}"
        else:
            line += f" {'-':>9s} {'-':>8s}"
        print(line)


def _plate(size: int, fields: int, root: Path):
    from openhcs_nb.plates import open_plate
    from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate

    path = root / "bench.ome.zarr"
    spec = SyntheticPlateSpec(
        rows=1,
        columns=1,
        fields=fields,
        channels=("DAPI", "GFP"),
        shape=(size, size),
        seed=3,
    )
    generate_plate(spec, path, format="ome-zarr")
    return open_plate(path)


def _time_well(plan, plate, well, device, repeats, sync) -> float:
    """Median seconds of all steps in one go (planes kept across steps)."""
    times = []
    for _ in range(repeats + 1):
        state = WellState.load(plate, well)
        state.device = device
        start = time.perf_counter()
        run_steps(plan, state)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _time_steps(plan, plate, well, device, repeats, sync) -> list[float]:
    """Median seconds of each step (in order, on one well's evolving state).

    Each step runs as a plan of its own, so held planes come back to the
    host after it: the whole-well row times the steps in one go instead.
    """
    runs: list[list[float]] = []
    for _ in range(repeats + 1):
        state = WellState.load(plate, well)
        state.device = device
        times = []
        for step in plan.steps:
            single = dataclasses.replace(plan, steps=(step,))
            start = time.perf_counter()
            run_steps(single, state)
            sync()
            times.append(time.perf_counter() - start)
        runs.append(times)
    return [statistics.median(col) for col in zip(*runs[1:], strict=True)]


def bench_pipeline(size: int, fields: int, repeats: int, gpu: Any, root: Path) -> None:
    """Section 2: the default pipeline per step and per well."""
    plate = _plate(size, fields, root)
    well = plate.layout.wells[0]
    pipeline = default_pipeline()
    cpu = compile_pipeline(pipeline, plate)
    dev = compile_pipeline(pipeline, plate, device="cuda:0")
    print(f"\n2. default pipeline, one well of {fields} fields x 2 channels x {size}²")
    report_transfers(dev)
    base = _time_steps(cpu, plate, well, None, repeats, _sync(None))
    generic = _time_steps(dev, plate, well, NUMPY, repeats, _sync(None))
    on_gpu = _time_steps(dev, plate, well, gpu, repeats, _sync(gpu)) if gpu else None
    wells = [
        _time_well(cpu, plate, well, None, repeats, _sync(None)),
        _time_well(dev, plate, well, NUMPY, repeats, _sync(None)),
    ]
    if gpu:
        wells.append(_time_well(dev, plate, well, gpu, repeats, _sync(gpu)))
    print(
        f"{'step':18s} {'cpu ms':>9s} {'xp=np ms':>9s} {'np÷cpu':>7s} {'gpu ms':>9s} {'gpu÷cpu':>8s}"
    )
    rows = list(zip([s.name for s in cpu.steps], base, generic, strict=True))
    rows.append(("whole well", wells[0], wells[1]))
    gpu_times = [*on_gpu, wells[2]] if on_gpu else None
    for i, (name, a, b) in enumerate(rows):
        line = f"{name:18s} {a * 1e3:9.1f} {b * 1e3:9.1f} {b / a:7.2f}"
        if gpu_times:
            line += f" {gpu_times[i] * 1e3:9.1f} {gpu_times[i] / a:8.3f}"
        else:
            line += f" {'-':>9s} {'-':>8s}"
        print(line)


def _copies(plan) -> tuple[int, int]:
    moves = transfers(plan)
    return (
        sum(t.direction == "to_device" for t in moves),
        sum(t.direction == "to_host" for t in moves),
    )


def report_transfers(plan) -> None:
    """Device calls and copies per well, and what keeping per step would cost."""
    calls = [c for s in plan.steps for ch in s.chains for c in ch.calls]
    placed = sum(c.device != "cpu" for c in calls)
    per_step = dataclasses.replace(
        plan,
        steps=tuple(
            dataclasses.replace(
                s, chains=tuple(dataclasses.replace(c, stays=()) for c in s.chains)
            )
            for s in plan.steps
        ),
    )
    up, down = _copies(plan)
    old_up, old_down = _copies(per_step)
    print(
        f"   device calls: {placed} of {len(calls)}; copies per well (one per "
        f"channel group): {up} up, {down} down (planes back on the host after "
        f"every step: {old_up} up, {old_down} down)"
    )
    for t in transfers(plan):
        print(f"     {t.step:14s} {t.direction:9s} {t.function} (channel {t.channel})")


def bench_remote(gpu: Any, root: Path) -> None:
    """Section 3: a whole remote run of the demo plate, GPU worker ÷ CPU worker."""
    print("\n3. remote run of the demo plate, 1 worker")
    if gpu is None:
        print("   skipped: needs CuPy and a CUDA device")
        return
    from openhcs_nb.client import connect
    from openhcs_nb.server.local import LocalServer

    seconds = {}
    for label, env in (("cpu", {}), ("gpu", {"OPENHCS_NB_EXECUTION_GPUS": "0"})):
        args = [
            "--demo",
            "--port",
            "0",
            "--workers",
            "1",
            "--results",
            str(root / label),
        ]
        with LocalServer(
            [*args, "--log-level", "WARNING"], root / f"srv-{label}", env=env
        ) as server:
            conn = connect(server.address)
            conn.submit(default_pipeline(), "demo").result()  # warm-up
            start = time.perf_counter()
            conn.submit(default_pipeline(), "demo").result()
            seconds[label] = time.perf_counter() - start
            conn.close()
    print(
        f"   cpu {seconds['cpu']:.2f} s, gpu {seconds['gpu']:.2f} s, gpu÷cpu {seconds['gpu'] / seconds['cpu']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--fields", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    gpu, about = gpu_namespace()
    print(f"bench_gpu: {about}")
    if gpu is None:
        print("   GPU columns are '-'; the CPU and xp=numpy columns still run.")
    bench_functions(args.size, args.fields, args.repeats, gpu)
    with tempfile.TemporaryDirectory() as tmp:
        bench_pipeline(args.size, args.fields, args.repeats, gpu, Path(tmp))
        bench_remote(gpu, Path(tmp))


if __name__ == "__main__":
    main()
