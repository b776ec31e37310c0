"""Does a well cost the same on a 384-well plate as on a 24-well plate?

Run: python benchmarks/bench_plate_scale.py [--wells-large 384] [--wells-small 24]
     [--size 256] [--repeats 2] [--workers 2]

Two synthetic plates with the same per-well shape (1 field, 2 channels,
``size``², the same nuclei per field) go through one real server on loopback,
interleaved small, large, small, large ... so drift on a busy machine hits both
alike. For each run it measures the wall time from submit to ``result()`` and
the peak RSS, sampled every 50 ms, of the server process, its descendants (the
forkserver and the workers, summed) and this (client) process separately. It prints:

1. time per well for each plate and the ratio large ÷ small (goal <= 1.05);
2. peak RSS per plate and the ratio large ÷ small for server, workers and
   client (goal ~1.0), with the side that grows named and its cost per well;
3. CPU time per well of each side, large ÷ small (robust to other load);
4. job-store bytes and results-folder bytes per well.

Plates are cached under ``$OPENHCS_NB_CACHE/bench`` (default
``~/.cache/openhcs-nb/bench``), keyed by their layout and size.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import connect
from openhcs_nb.plates.demo import cache_root, ensure_plate
from openhcs_nb.plates.synthetic import SyntheticPlateSpec
from openhcs_nb.server.local import LocalServer

#: Standard plate formats, wells -> (rows, columns).
LAYOUTS = {
    6: (2, 3),
    12: (3, 4),
    24: (4, 6),
    48: (6, 8),
    96: (8, 12),
    384: (16, 24),
    1536: (32, 48),
}
SAMPLE_S = 0.05
PLATE_VERSION = 1  # bump when the spec below changes, so caches are not reused
MIB = 2**20
SIDES = ("server", "workers", "client")


def plate_spec(wells: int, size: int) -> SyntheticPlateSpec:
    """The same field in every well: nuclei count fixed, so work per well is equal."""
    rows, columns = LAYOUTS[wells]
    nuclei = max(4, round(60 * (size / 256) ** 2))
    return SyntheticPlateSpec(
        rows=rows,
        columns=columns,
        fields=1,
        channels=("DAPI", "Cytoplasm"),
        shape=(size, size),
        seed=7,
        min_nuclei=nuclei,
        max_nuclei=nuclei,
        radius=(6.0, 10.0),
        touching_fraction=0.2,
        noise=20.0,
        illumination=0.4,
        name=f"bench {wells} wells",
        style="realistic",
        confluence=0.5,
    )


def bench_plate(wells: int, size: int, root: Path) -> str:
    """Generate the plate once under ``root``; return its reference there."""
    ref = f"scale-v{PLATE_VERSION}-{wells}w-{size}px.ome.zarr"
    ensure_plate(plate_spec(wells, size), root / ref)
    return ref


class PeakRss:
    """Samples the RSS of server, workers and client until stopped; keeps peaks.

    A thread rather than ``resource.getrusage``: ru_maxrss never comes down,
    so it cannot say which of several runs in one process reached a peak.
    """

    def __init__(self, server_pid: int) -> None:
        self._server = psutil.Process(server_pid)
        self._client = psutil.Process()
        self._stop = threading.Event()
        self.start = self._sample()
        self.peak = dict(self.start)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[str, int]:
        workers = 0
        for child in self._server.children(recursive=True):
            try:
                workers += child.memory_info().rss
            except psutil.NoSuchProcess:  # a worker replaced between the calls
                continue
        return {
            "server": self._server.memory_info().rss,
            "workers": workers,
            "client": self._client.memory_info().rss,
        }

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            for side, rss in self._sample().items():
                self.peak[side] = max(self.peak[side], rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for side, rss in self._sample().items():
            self.peak[side] = max(self.peak[side], rss)


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by server, workers and client (user + system).

    Less sensitive than wall time to other jobs on a shared machine, so it
    tells whether one side does more work per well on the larger plate.
    """

    def used(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    server = psutil.Process(server_pid)
    workers = 0.0
    for child in server.children(recursive=True):
        try:
            workers += used(child)
        except psutil.NoSuchProcess:
            continue
    return {
        "server": used(server),
        "workers": workers,
        "client": used(psutil.Process()),
    }


@dataclass(frozen=True)
class Run:
    """What one submit-to-result measured."""

    wells: int
    seconds: float
    peak: dict[str, int]
    rise: dict[str, int]  # peak minus the RSS just before the submit
    cpu: dict[str, float]  # CPU seconds each side spent on the run
    store_bytes: int  # job-store file growth during the run
    row_bytes: int  # bytes of this execution's rows in the job store
    results_bytes: int

    @property
    def per_well(self) -> float:
        return self.seconds / self.wells


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (the file itself if it is one)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def store_bytes(results_root: Path) -> int:
    """The SQLite job store with its WAL and shared-memory files."""
    return sum(folder_bytes(p) for p in results_root.glob("jobs.sqlite3*"))


def execution_row_bytes(results_root: Path, execution_id: str) -> int:
    """Bytes one execution holds in the job store: its events and well rows.

    File growth alone misleads: SQLite reuses free pages and the WAL file is
    recycled, so the rows themselves are summed (read-only, beside the server).
    """
    uri = f"file:{results_root / 'jobs.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        events = db.execute(
            "SELECT coalesce(sum(length(payload) + coalesce(length(arrays), 0)), 0)"
            " FROM events WHERE execution_id = ?",
            (execution_id,),
        ).fetchone()[0]
        wells = db.execute(
            "SELECT coalesce(sum(coalesce(length(summary), 0)"
            " + coalesce(length(error), 0) + coalesce(length(traceback), 0)), 0)"
            " FROM wells WHERE execution_id = ?",
            (execution_id,),
        ).fetchone()[0]
    return int(events) + int(wells)


def _trim_heap() -> None:
    """Give freed memory back to the OS, so one run's peak does not hide the next's."""
    gc.collect()
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def run_once(server: LocalServer, ref: str, wells: int, results: Path) -> Run:
    """Submit the default pipeline on ``ref`` through a fresh connection and time it.

    A fresh connection per run: a connection keeps every execution it followed
    (with its previews), which would otherwise carry one run's memory into the
    next and say nothing about plate size.
    """
    assert server.process is not None
    _trim_heap()
    before = store_bytes(results)
    conn = connect(server.address)
    cpu_before = cpu_seconds(server.process.pid)
    try:
        with PeakRss(server.process.pid) as rss:
            start = time.perf_counter()
            run = conn.submit(nuclei_count_pipeline(), ref)
            table = run.result(timeout=1800)
            seconds = time.perf_counter() - start
        cpu_after = cpu_seconds(server.process.pid)
        done = int((table["status"] == "done").sum())
        if done != wells:
            failed = run.failed_wells
            raise RuntimeError(f"{ref}: {done}/{wells} wells done; failed: {failed}")
        run_dir, execution_id = results / run.id, run.id
    finally:
        conn.close()
    del run, table, conn
    return Run(
        wells=wells,
        seconds=seconds,
        peak=dict(rss.peak),
        rise={s: rss.peak[s] - rss.start[s] for s in SIDES},
        cpu={s: cpu_after[s] - cpu_before[s] for s in SIDES},
        store_bytes=store_bytes(results) - before,
        row_bytes=execution_row_bytes(results, execution_id),
        results_bytes=folder_bytes(run_dir),
    )


def _config(path: Path, plates: Path, results: Path, workers: int) -> Path:
    path.write_text(
        f"""[server]
command_address = "tcp://127.0.0.1:0"
event_address = "tcp://127.0.0.1:0"

[plates]
roots = ["{plates}"]

[results]
root = "{results}"

[limits]
requests_per_second = 0

[execution]
workers = {workers}
max_concurrent_executions = 1
"""
    )
    return path


def measure(args: argparse.Namespace, tmp: Path) -> dict[int, list[Run]]:
    """Interleave small and large runs on one server; the runs in order, by plate."""
    plates = cache_root() / "bench"
    start = time.perf_counter()
    refs = {
        n: bench_plate(n, args.size, plates)
        for n in (args.wells_small, args.wells_large)
    }
    print(f"plates ready in {time.perf_counter() - start:.1f} s under {plates}")
    results = tmp / "results"
    config = _config(tmp / "server.toml", plates, results, args.workers)
    runs: dict[int, list[Run]] = {args.wells_small: [], args.wells_large: []}
    with LocalServer(
        ["--config", str(config), "--log-level", "WARNING"], tmp / "srv"
    ) as server:
        print(f"server on {server.address}, {args.workers} workers")
        warm = run_once(server, refs[args.wells_small], args.wells_small, results)
        print(f"  warm-up {args.wells_small} wells {warm.seconds:.2f} s (not counted)")
        for i in range(args.repeats):
            for wells in (args.wells_small, args.wells_large):
                got = run_once(server, refs[wells], wells, results)
                runs[wells].append(got)
                print(
                    f"  run {i + 1} {wells:5d} wells {got.seconds:7.2f} s "
                    f"{got.per_well * 1000:7.1f} ms/well  peak MiB "
                    + "  ".join(f"{s} {got.peak[s] / MIB:6.1f}" for s in SIDES),
                    flush=True,
                )
    return runs


def report(runs: dict[int, list[Run]], small: int, large: int) -> None:
    """Print per-well time, peak RSS and storage per plate, with their ratios."""
    s_runs, l_runs = runs[small], runs[large]
    per_s = statistics.median(r.per_well for r in s_runs)
    per_l = statistics.median(r.per_well for r in l_runs)
    print(f"time per well (median of {len(s_runs)})")
    print(f"  {small:5d} wells  {per_s * 1000:8.2f} ms/well")
    print(f"  {large:5d} wells  {per_l * 1000:8.2f} ms/well")
    print(f"  ratio time/well {large}/{small}: {per_l / per_s:.3f}  (goal <= 1.05)")
    wall_s = statistics.median(r.seconds for r in s_runs)
    wall_l = statistics.median(r.seconds for r in l_runs)
    marginal = (wall_l - wall_s) / (large - small)
    print(
        f"  fit wall = fixed + wells x marginal: marginal {marginal * 1000:.2f} "
        f"ms/well, fixed {wall_s - small * marginal:.2f} s per run"
    )
    print("CPU per well, ms (median); less sensitive to other load than wall time")
    for side in SIDES:
        cpu_s = statistics.median(r.cpu[side] for r in s_runs) / small
        cpu_l = statistics.median(r.cpu[side] for r in l_runs) / large
        print(
            f"  {side:<7} {small}: {cpu_s * 1000:7.2f}  {large}: {cpu_l * 1000:7.2f}  "
            f"ratio cpu {side} {large}/{small}: {cpu_l / max(cpu_s, 1e-9):.3f}"
        )
    print("peak RSS, MiB (max over runs); rise = peak - RSS at submit (median)")
    growing = []
    for side in SIDES:
        peak_s = max(r.peak[side] for r in s_runs)
        peak_l = max(r.peak[side] for r in l_runs)
        rise_s = statistics.median(r.rise[side] for r in s_runs)
        rise_l = statistics.median(r.rise[side] for r in l_runs)
        ratio = peak_l / max(1, peak_s)
        per_well = (rise_l - rise_s) / (large - small)
        print(
            f"  {side:<7} {small}: {peak_s / MIB:7.1f} (rise {rise_s / MIB:6.1f})  "
            f"{large}: {peak_l / MIB:7.1f} (rise {rise_l / MIB:6.1f})  "
            f"ratio {side} {large}/{small}: {ratio:.3f}  "
            f"(+{per_well / 1024:.1f} KiB per extra well)"
        )
        if ratio > 1.05 and peak_l - peak_s > 8 * MIB:
            growing.append(f"{side} (+{per_well / 1024:.0f} KiB/well)")
    if growing:
        print(f"grows with the plate: {', '.join(growing)}")
    else:
        print("grows with the plate: none (every ratio <= 1.05 or < 8 MiB apart)")
    print("storage per well (median)")
    for wells, group in ((small, s_runs), (large, l_runs)):
        rows = statistics.median(r.row_bytes for r in group) / wells
        grew = statistics.median(r.store_bytes for r in group) / wells
        folder = statistics.median(r.results_bytes for r in group) / wells
        print(
            f"  {wells:5d} wells  job store {rows / 1024:8.1f} KiB/well "
            f"(file growth {grew / 1024:.1f})  results folder "
            f"{folder / 1024:8.1f} KiB/well"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    formats = sorted(LAYOUTS)
    parser.add_argument("--wells-large", type=int, default=384, choices=formats)
    parser.add_argument("--wells-small", type=int, default=24, choices=formats)
    parser.add_argument("--size", type=int, default=256, help="field edge, pixels")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.wells_large <= args.wells_small:
        parser.error("--wells-large must be more than --wells-small")
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-plate-scale-") as tmp:
        runs = measure(args, Path(tmp))
    report(runs, args.wells_small, args.wells_large)
    print(f"total {time.perf_counter() - total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
