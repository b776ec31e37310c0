"""openhcs-nb against OpenHCS 0.8.6 on OpenHCS's own synthetic plate.

Run: python benchmarks/bench_peer.py --install   (first time: builds the venv)
     python benchmarks/bench_peer.py [--wells 8] [--size 512] [--repeats 2]

OpenHCS runs from a scratch venv (``$OPENHCS_NB_CACHE/peer-venv``, default
``~/.cache/openhcs-nb/peer-venv``) through ``_openhcs_peer.py``, so neither
package's dependencies touch the other's. The plate is written by OpenHCS's
``SyntheticMicroscopyGenerator`` (ImageXpress layout, 2x2 fields, 2 channels)
and read by our ImageXpress reader. Both sides run the same semantics with
the same number of worker processes, interleaved A B A B:

- OpenHCS: ``stack_percentile_normalize(1, 99)`` on every channel, then
  ``count_cells_single_channel(THRESHOLD, min/max area)`` on channel 1;
- ours: ``percentile_normalize(1, 99)``, then on channel 1
  ``threshold_manual(0.1)`` (OpenHCS's 0.1 x max on a 0..1 image),
  ``label_objects``, ``remove_small_objects`` with the same areas, and
  ``measure_objects``.

Each side is timed as a whole process (start to exit, imports included, as a
user pays it) and its peak memory is the largest sum of RSS over the process
tree, sampled with psutil every 20 ms. CPU seconds (user + sys of every process
seen in the tree, to within one 20 ms sample) are printed too: on a shared, overloaded host they are
the figure least distorted by waiting for a core. It prints our wall ÷ theirs (goal <=
0.2), peak RSS ÷ theirs, and the per-well object counts of both sides.
Differences that remain: OpenHCS normalises over the 4-field stack (ours per
field) and clears border objects (ours keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from openhcs_nb.errors import OpenHCSError

HERE = Path(__file__).resolve().parent
PEER = HERE / "_openhcs_peer.py"
VERSION = "0.8.6"
MIN_AREA, MAX_AREA, THRESHOLD = 20, 2000, 0.1


def venv_dir() -> Path:
    """The scratch venv OpenHCS is installed into."""
    root = os.environ.get("OPENHCS_NB_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "openhcs-nb"
    return base / "peer-venv"


def peer_python() -> Path:
    """The venv's interpreter (which may not exist yet)."""
    return venv_dir() / "bin" / "python"


def install() -> None:
    """Create the venv and ``pip install openhcs==0.8.6`` (CPU-only deps).

    Its base requirements are CPU packages (numpy, scikit-image, numba,
    opencv-python-headless, zarr, ...) plus PyQt6 through pyqt-reactive; the
    GPU stacks (torch, jax, cupy, tensorflow) are only in its ``gpu`` extra.
    """
    subprocess.run([sys.executable, "-m", "venv", str(venv_dir())], check=True)
    pip = [str(peer_python()), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"openhcs=={VERSION}", "psutil"], check=True)


@dataclass(frozen=True)
class Run:
    """One whole-process run: wall seconds, peak tree RSS, parsed result."""

    seconds: float
    cpu_seconds: float
    peak_rss: int
    result: dict[str, object]


def run_measured(command: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``command``, sampling the RSS of its process tree until it exits.

    Raises
    ------
    RuntimeError
        The command failed or printed no result line (its output tail is kept).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    peak = [0]
    cpu_seen: dict[tuple[int, float], float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(proc.pid, peak, cpu_seen, stop))
    sampler.start()
    output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    cpu = sum(cpu_seen.values())
    lines = [line for line in output.splitlines() if line.startswith("PEER-RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(output.splitlines()[-15:])
        message = f"{command[1]} exited {proc.returncode}:\n{tail}"
        raise RuntimeError(message)
    return Run(
        seconds, cpu, peak[0], json.loads(lines[-1].removeprefix("PEER-RESULT "))
    )


def _sample(
    pid: int,
    peak: list[int],
    cpu_seen: dict[tuple[int, float], float],
    stop: threading.Event,
) -> None:
    """Track peak tree RSS and the last CPU time seen of every process in it.

    CPU time is read per process (keyed by pid and start time) rather than
    from ``RUSAGE_CHILDREN``, which misses grandchildren whose parent (a
    forkserver, say) is never waited for.
    """
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        total = 0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in tree:
            try:
                with proc.oneshot():
                    total += proc.memory_info().rss
                    times = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            cpu_seen[key] = times.user + times.system
        peak[0] = max(peak[0], total)
        stop.wait(0.02)


def ours_pipeline(*, otsu: bool = False) -> object:
    """Our pipeline with OpenHCS's threshold-counter semantics.

    ``otsu`` swaps the fixed 0.1 x max threshold for Otsu's, only to show
    what the plate holds when the fixed threshold finds nothing.
    """
    from openhcs_nb import Pipeline, Step
    from openhcs_nb.functions import (
        label_objects,
        measure_objects,
        percentile_normalize,
        remove_small_objects,
        threshold_manual,
        threshold_otsu,
    )

    threshold = threshold_otsu if otsu else (threshold_manual, {"value": THRESHOLD})
    count = [
        threshold,
        label_objects,
        (remove_small_objects, {"min_size": MIN_AREA, "max_size": MAX_AREA}),
    ]
    return Pipeline(
        "peer",
        [
            Step((percentile_normalize, {"low": 1.0, "high": 99.0}), name="normalize"),
            Step({0: count}, name="count", group_by="channel"),
            Step(measure_objects, name="measure", variable_components=["channel"]),
        ],
    )


def ours_run(
    plate: Path, out: Path, workers: int, *, otsu: bool = False
) -> dict[str, object]:
    """Our side, run in its own process by :func:`main` (``--ours``)."""
    from openhcs_nb import run_local

    started = time.perf_counter()
    results = run_local(ours_pipeline(otsu=otsu), plate, workers=workers, out=out)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    # Counted from the object table: the per-well summary's columns depend on
    # which measurements ran, the object rows do not.
    per_well = results.objects.groupby("well").size() if len(results.objects) else {}
    counts = {str(w): int(per_well.get(w, 0)) for w in results.wells["well"]}
    return {"seconds": seconds, "failed": results.failed, "counts": counts}


def compare(args: argparse.Namespace) -> int:
    """Generate the plate, run both sides interleaved, print the ratios."""
    python = str(peer_python())
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    try:
        plate = work / "plate"
        gen = [python, str(PEER), "generate", str(plate)]
        gen += ["--wells", str(args.wells), "--size", str(args.size), "--seed", "3"]
        run_measured(gen)
        workers = str(args.workers)
        theirs: list[Run] = []
        ours: list[Run] = []
        for i in range(args.repeats):
            out = work / f"openhcs-{i}"
            theirs.append(
                run_measured(
                    [
                        python,
                        str(PEER),
                        "run",
                        str(plate),
                        str(out),
                        "--workers",
                        workers,
                    ]
                )
            )
            out = work / f"ours-{i}"
            ours.append(
                run_measured(
                    [
                        sys.executable,
                        __file__,
                        "--ours",
                        str(plate),
                        str(out),
                        "--workers",
                        workers,
                    ]
                )
            )
            print(
                f"round {i + 1}: OpenHCS {theirs[-1].seconds:.1f} s, "
                f"ours {ours[-1].seconds:.1f} s",
                flush=True,
            )
        otsu: Run | None = None
        if args.otsu_counts:
            out = work / "ours-otsu"
            command = [sys.executable, __file__, "--ours", str(plate), str(out)]
            otsu = run_measured([*command, "--workers", workers, "--otsu"])
        print(report(args, theirs, ours, otsu))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    args: argparse.Namespace, theirs: list[Run], ours: list[Run], otsu: Run | None
) -> str:
    """The printed table: ratios first, then counts side by side."""
    t_wall = statistics.median(r.seconds for r in theirs)
    o_wall = statistics.median(r.seconds for r in ours)
    t_in = statistics.median(float(r.result["seconds"]) for r in theirs)  # type: ignore[arg-type]
    o_in = statistics.median(float(r.result["seconds"]) for r in ours)  # type: ignore[arg-type]
    t_cpu = statistics.median(r.cpu_seconds for r in theirs)
    o_cpu = statistics.median(r.cpu_seconds for r in ours)
    t_rss = max(r.peak_rss for r in theirs)
    o_rss = max(r.peak_rss for r in ours)
    mib = 1024 * 1024
    lines = [
        f"plate: {args.wells} wells x 4 fields x 2 channels x {args.size}^2 "
        f"(OpenHCS generator), {args.workers} workers, {args.repeats} rounds A B",
        f"wall (whole process): ours {o_wall:.1f} s / OpenHCS {t_wall:.1f} s "
        f"= {o_wall / t_wall:.3f} (goal <= 0.2)",
        f"in-process run:       ours {o_in:.1f} s / OpenHCS {t_in:.1f} s "
        f"= {o_in / t_in:.3f}",
        f"CPU (user+sys, tree): ours {o_cpu:.1f} s / OpenHCS {t_cpu:.1f} s "
        f"= {o_cpu / t_cpu:.3f}",
        f"peak RSS (tree):      ours {o_rss / mib:.0f} MiB / OpenHCS "
        f"{t_rss / mib:.0f} MiB = {o_rss / t_rss:.3f}",
        f"load average during run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        "objects per well, channel 1 (fixed 0.1 x max threshold on both sides"
        + ("; last column: ours with Otsu, untimed)" if otsu else ")"),
        f"  {'well':<6}{'OpenHCS':>8}{'ours':>8}" + (f"{'Otsu':>8}" if otsu else ""),
    ]
    t_counts: dict[str, int] = theirs[-1].result["counts"]  # type: ignore[assignment]
    o_counts: dict[str, int] = ours[-1].result["counts"]  # type: ignore[assignment]
    x_counts: dict[str, int] = otsu.result["counts"] if otsu else {}  # type: ignore[assignment]
    for well in sorted(set(t_counts) | set(o_counts)):
        row = f"  {well:<6}{t_counts.get(well, '-')!s:>8}{o_counts.get(well, '-')!s:>8}"
        lines.append(row + (f"{x_counts.get(well, '-')!s:>8}" if otsu else ""))
    for name, runs in (("OpenHCS", theirs), ("ours", ours)):
        failed = runs[-1].result.get("failed") or {}
        if failed:
            lines.append(f"{name} failed wells: {failed}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse options; ``--ours`` is the child-process entry for our side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="build the OpenHCS venv")
    parser.add_argument("--wells", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--otsu-counts",
        action="store_true",
        help="also count with Otsu on our side (untimed), for context",
    )
    parser.add_argument("--otsu", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--ours", nargs=2, type=Path, metavar=("PLATE", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.ours is not None:
        try:
            result = ours_run(args.ours[0], args.ours[1], args.workers, otsu=args.otsu)
        except OpenHCSError as exc:
            print(f"our run failed: {exc}", file=sys.stderr)
            return 1
        print("PEER-RESULT " + json.dumps(result), flush=True)
        return 0
    if args.install:
        install()
    if not peer_python().exists():
        print(f"no OpenHCS venv at {venv_dir()}; run with --install first")
        return 2
    return compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
