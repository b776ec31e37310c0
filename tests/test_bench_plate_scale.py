"""The plate-scale benchmark runs end to end at a tiny size and reports every ratio.

No timing or memory thresholds are asserted: machines are noisy. What must
hold is that the benchmark completes through a real server, every well of
every run finishes, and each ratio it promises is printed as a finite number.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_plate_scale.py"
NUMBER = r"(-?[\d.]+(?:e[+-]?\d+)?|nan|inf)"


@pytest.fixture(scope="module")
def tiny_report() -> str:
    """One run of 48 wells against 6 wells of 64² fields, through a real server."""
    tiny = ["--wells-large", "48", "--wells-small", "6", "--size", "64"]
    done = subprocess.run(
        [sys.executable, str(BENCH), *tiny, "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def _finite(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in:\n{text}"
    value = float(found.group(1))
    assert math.isfinite(value), f"{pattern!r} is {value}"
    return value


@pytest.mark.slow
def test_when_run_tiny_then_the_time_per_well_ratio_is_a_finite_number(
    tiny_report: str,
):
    ratio = _finite(rf"ratio time/well 48/6: {NUMBER}", tiny_report)
    assert ratio > 0
    small = _finite(rf"\n\s+6 wells\s+{NUMBER} ms/well", tiny_report)
    large = _finite(rf"\n\s+48 wells\s+{NUMBER} ms/well", tiny_report)
    assert ratio == pytest.approx(large / small, rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("side", ["server", "workers", "client"])
def test_when_run_tiny_then_each_side_has_finite_cpu_and_peak_rss_ratios(
    tiny_report: str, side: str
):
    cpu = _finite(rf"ratio cpu {side} 48/6: {NUMBER}", tiny_report)
    assert cpu >= 0
    ratio = _finite(rf"ratio {side} 48/6: {NUMBER}", tiny_report)
    assert ratio > 0
    peaks = re.search(
        rf"{side}\s+6:\s+{NUMBER} \(rise.*48:\s+{NUMBER} \(rise", tiny_report
    )
    assert peaks, tiny_report
    small, large = float(peaks.group(1)), float(peaks.group(2))
    assert small > 0 and large > 0  # a real process has a resident set
    assert ratio == pytest.approx(large / small, rel=0.02)


@pytest.mark.slow
def test_when_run_tiny_then_it_names_what_grows_and_storage_per_well(
    tiny_report: str,
):
    assert re.search(r"grows with the plate: \S", tiny_report), tiny_report
    for wells in (6, 48):
        store = _finite(rf"{wells} wells\s+job store\s+{NUMBER} KiB/well", tiny_report)
        folder = _finite(
            rf"{wells} wells\s+job store.*results folder\s+{NUMBER} KiB/well",
            tiny_report,
        )
        assert store > 0 and folder > 0  # every well leaves events and outputs
