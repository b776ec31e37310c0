"""``openhcs-nb demo``: the default pipeline on the demo plate, checked against truth.

By default this takes the full remote path: it starts an execution server on
127.0.0.1, submits the pipeline through the client, prints each well as it
streams in, and prints the final table. ``--local`` runs in-process instead.
The demo plate has a known number of nuclei planted in every well, so the table
shows found next to planted and a person can see at a glance whether it worked.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from openhcs_nb.plates.demo import demo_ground_truth, demo_plate

TOLERANCE = 0.10


def check_table(wells: pd.DataFrame, planted: dict[str, int]) -> pd.DataFrame:
    """Add planted counts and whether each well is within the tolerance."""
    table = wells.drop(columns=["error", "row", "column"]).copy()
    table.insert(2, "planted", table["well"].map(planted))
    error = (table["count"] - table["planted"]).abs() / table["planted"]
    table["within_10%"] = error <= TOLERANCE
    return table


def run_demo(
    workers: int | None = None, out: Path | None = None, *, local: bool = False
) -> int:
    """Run the demo and print the table; returns 0 when every well is right."""
    start = time.perf_counter()
    plate = demo_plate()
    truth = demo_ground_truth()
    print(f"demo plate: {plate}  (ready in {time.perf_counter() - start:.1f} s)")
    out = Path(out or Path.cwd() / "demo-results")
    start = time.perf_counter()
    if local:
        wells, path, failed = _run_local(workers, out)
    else:
        wells, path, failed = _run_remote(workers, out, truth.counts())
    elapsed = time.perf_counter() - start
    table = check_table(wells, truth.counts())
    with pd.option_context("display.width", 160, "display.precision", 1):
        print(table.to_string(index=False))
    good = int(table["within_10%"].sum())
    print(f"{good}/{len(table)} wells within ±10% of planted, {elapsed:.1f} s")
    print(f"results: {path}  (wells.parquet, objects.parquet, results.ome.zarr)")
    ok = good == len(table) == len(plate.wells) and not failed
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def _run_local(workers: int | None, out: Path) -> tuple[pd.DataFrame, Path, int]:
    from openhcs_nb import default_pipeline, run_local

    results = run_local(default_pipeline(), demo_plate(), workers=workers, out=out)
    return results.wells, results.path, len(results.failed)


def _run_remote(
    workers: int | None, out: Path, planted: dict[str, int]
) -> tuple[pd.DataFrame, Path, int]:
    from tqdm import tqdm

    from openhcs_nb import default_pipeline
    from openhcs_nb.client import connect
    from openhcs_nb.server.local import LocalServer

    args = ["--demo", "--port", "0", "--results", str(out), "--log-level", "WARNING"]
    if workers:
        args += ["--workers", str(workers)]
    with LocalServer(args, out / "server") as server:
        print(f"server on {server.address} (ready in {server.ready_seconds:.2f} s)")
        with connect(server.address) as conn:
            run = conn.submit(default_pipeline(), "demo")
            print(f"execution {run.id}: {len(planted)} wells submitted")
            with tqdm(total=len(planted), unit="well", desc="wells") as bar:
                for well in run:
                    found = well.summary.get("count", "failed")
                    tqdm.write(
                        f"  {well.well}  {well.status:<6} nuclei {found!s:>4}  "
                        f"planted {planted.get(well.well, '?'):>4}"
                    )
                    bar.update(1)
            wells = run.result()
        return wells, out / run.id, int((wells["status"] == "failed").sum())


if __name__ == "__main__":
    sys.exit(run_demo())
