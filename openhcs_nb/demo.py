"""``openhcs-nb demo``: the default pipeline on the demo plate, checked against truth.

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
    workers: int | None = None, out: Path | None = None, *, local: bool = True
) -> int:
    """Run the demo and print the table; returns 0 when every well is right."""
    from openhcs_nb import default_pipeline, run_local

    start = time.perf_counter()
    plate = demo_plate()
    truth = demo_ground_truth()
    print(f"demo plate: {plate}  (ready in {time.perf_counter() - start:.1f} s)")
    out = out or Path.cwd() / "demo-results"
    start = time.perf_counter()
    results = run_local(default_pipeline(), plate, workers=workers, out=out)
    elapsed = time.perf_counter() - start
    table = check_table(results.wells, truth.counts())
    with pd.option_context("display.width", 160, "display.precision", 1):
        print(table.to_string(index=False))
    good = int(table["within_10%"].sum())
    print(
        f"{good}/{len(table)} wells within ±10% of the planted count, {elapsed:.1f} s"
    )
    print(
        f"results: {results.path}  (wells.parquet, objects.parquet, results.ome.zarr)"
    )
    ok = good == len(table) and not results.failed
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_demo())
