"""The execution server on Dask ÷ on its own workers, side by side in one run.

Run: python benchmarks/bench_dask.py [--wells 8] [--repeats 3]

A real ``dask scheduler`` and two ``dask worker --nthreads 1`` processes on
loopback, and two ``openhcs-server`` processes on the demo plate (its first
``--wells`` wells, default 8): one with its own workers, one with
``executor = "dask"``. Each does a warm-up run, then ``--repeats`` timed runs
at N = 1 and N = 2 wells in flight (own workers: ``workers = N``; Dask:
``dask_wells_in_flight = N``, same two-worker cluster), the four set-ups taking
turns run by run. Printed:

1. wall time Dask ÷ own workers at N = 1 and N = 2, and the overhead per well;
2. parallel efficiency T(1) ÷ (2 · T(2)) of each executor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openhcs_nb import demo_plate, nuclei_count_pipeline
from openhcs_nb.client import connect
from openhcs_nb.server.local import LocalServer

DASK = str(Path(sys.executable).with_name("dask"))


def start_cluster(base: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    """One scheduler and ``workers`` single-threaded worker processes."""
    procs: list[subprocess.Popen] = []
    file = base / "scheduler.json"

    def spawn(name: str, *args: str) -> None:
        log = (base / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [DASK, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
          "--no-dashboard", "--scheduler-file", str(file))  # fmt: skip
    while not file.exists():
        time.sleep(0.1)
    address = json.loads(file.read_text())["address"]
    for i in range(workers):
        spawn(f"worker{i}", "worker", address, "--nthreads", "1", "--nworkers", "1",
              "--no-dashboard", "--local-directory", str(base / f"w{i}"))  # fmt: skip
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def server(base: Path, execution: str) -> LocalServer:
    """A server on the demo plate with the given ``[execution]`` lines."""
    base.mkdir(parents=True, exist_ok=True)
    config = base / "server.toml"
    config.write_text(
        f"""
[server]
command_address = "tcp://127.0.0.1:0"
event_address = "tcp://127.0.0.1:0"

[plates]
demo = true

[results]
root = "{base / "results"}"

[limits]
requests_per_second = 0

[execution]
{execution}
"""
    )
    return LocalServer(["--config", str(config), "--log-level", "WARNING"], base)


def one_run(conn: Any, wells: list[str]) -> float:
    """Wall time of one run of ``wells``, submit to result."""
    start = time.perf_counter()
    conn.submit(nuclei_count_pipeline(), "demo", wells=wells).result()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wells", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    wells = list(demo_plate().wells)[: args.wells]
    times: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        base = Path(tmp)
        (base / "dask").mkdir()
        address, procs = start_cluster(base / "dask", 2)
        stack.callback(lambda: [os.killpg(p.pid, signal.SIGKILL) for p in procs])
        conns = {}
        for n in (1, 2):
            kinds = {
                "own": f"workers = {n}",
                "dask": (
                    f'executor = "dask"\ndask_scheduler = "{address}"\n'
                    f"dask_wells_in_flight = {n}"
                ),
            }
            for kind, lines in kinds.items():
                srv = stack.enter_context(server(base / f"{kind}{n}", lines))
                conn = connect(srv.address)
                stack.callback(conn.close)
                one_run(conn, wells[:2])  # warm-up: imports, plate caches
                conns[kind, n] = conn
        # Round-robin over the four set-ups, so load from elsewhere on the host
        # falls on all of them alike.
        for _ in range(args.repeats):
            for key, conn in conns.items():
                times.setdefault(key, []).append(one_run(conn, wells))
    results = {key: statistics.median(values) for key, values in times.items()}
    count = len(wells)
    print(
        f"demo plate, first {count} wells, median of {args.repeats} interleaved "
        "runs; Dask: 2 worker processes x 1 thread"
    )
    print(f"{'N':>2} | {'own s':>7} | {'dask s':>7} | dask ÷ own | overhead/well")
    for n in (1, 2):
        own, dask = results["own", n], results["dask", n]
        per_well = (dask - own) / count * 1000
        print(f"{n:>2} | {own:7.2f} | {dask:7.2f} | {dask / own:10.2f} | "
              f"{per_well:+9.1f} ms")  # fmt: skip
    for kind in ("own", "dask"):
        efficiency = results[kind, 1] / (2 * results[kind, 2])
        print(f"parallel efficiency {kind:>4}: T(1) ÷ (2·T(2)) = {efficiency:.2f}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
