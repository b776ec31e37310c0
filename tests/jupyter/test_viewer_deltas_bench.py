"""The viewer-deltas benchmark runs quickly and its byte counts hold together.

Bytes, not time: the deltas must be smaller than the whole-dict sync they
replace, growing with the wells per batch, and the snapshot a new view gets
is at least as large as the largest whole-dict update.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_viewer_deltas.py"
ROW = r"^\s*(\d+)\s+(\d+)/(\d+)\s+(\d+)/(\d+)\s+([\d.]+)x\s+(\d+)$"


def test_when_the_bench_runs_then_deltas_are_smaller_than_whole_dicts() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--wells", "96", "--batch", "1", "8"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "96 wells, 24 features per well" in done.stdout
    rows = [tuple(map(float, m)) for m in re.findall(ROW, done.stdout, re.M)]
    assert [r[0] for r in rows] == [1, 8], done.stdout
    for _batch, before, before_max, after, after_max, ratio, snapshot in rows:
        assert after < before and after_max < before_max
        assert ratio > 1
        assert snapshot >= before_max
    assert rows[1][3] > rows[0][3]  # more wells per batch: a larger delta
