"""The viewer benchmark runs in a quick mode and prints both measurements.

No timing thresholds: what must hold is that both paths run end to end on a
real loopback server and every printed figure and ratio is a finite number.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_viewer.py"
NUMBER = r"([\d.]+|nan|inf)"
LINE = (
    rf": remote p50 {NUMBER} ms p95 {NUMBER} ms \| "
    rf"in-process p50 {NUMBER} ms p95 {NUMBER} ms \| ratio {NUMBER}"
)


def test_quick_run_prints_p50_p95_and_ratio_for_click_and_zoom() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--size", "320", "--repeats", "3"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "field 320x320, 3 repeats" in out
    click = re.search("click to full field" + LINE, out)
    # a 320² field under a 1024x768 viewport: 2 x 2 tiles of 256
    zoom = re.search(r"zoom to sharp tiles \(4 tiles, 6 in flight\)" + LINE, out)
    assert click and zoom, out
    for match in (click, zoom):
        values = [float(v) for v in match.groups()]
        assert all(math.isfinite(v) and v > 0 for v in values), values
        assert values[0] <= values[1] and values[2] <= values[3]
        assert math.isclose(
            values[4], values[0] / values[2], rel_tol=0.02, abs_tol=0.01
        )
