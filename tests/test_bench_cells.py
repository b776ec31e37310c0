"""The cells benchmark runs at a tiny size and prints every ratio it promises.

No timing thresholds: machines are noisy. What must hold is that both chains
run end to end on a realistic field, every step's ratio and the chain ratio
are finite, the two segmentations agree and ours' numbers match the oracles'.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cells.py"
NUMBER = r"(-?[\d.]+(?:e[+-]?\d+)?|nan|inf)"
STEPS = (
    "primary",
    "secondary",
    "secondary distance (extra)",
    "tertiary",
    "measure",
    "haralick",
    "quality",
    "total",
)


@pytest.fixture(scope="module")
def tiny_report() -> str:
    """One run on a 192² field: clumped nuclei, debris, uneven light, noise."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--size", "192", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def _finite(pattern: str, text: str) -> float:
    found = re.search(pattern, text, flags=re.MULTILINE)
    assert found, f"{pattern!r} not in:\n{text}"
    value = float(found.group(1))
    assert math.isfinite(value), f"{pattern!r} gave {value}"
    return value


@pytest.mark.parametrize("step", STEPS)
def test_when_benchmark_runs_then_each_step_has_a_finite_ratio(
    tiny_report: str, step: str
) -> None:
    row = rf"^{re.escape(step)}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$"
    found = re.search(row, tiny_report, flags=re.MULTILINE)
    assert found, f"no row for {step!r} in:\n{tiny_report}"
    ours, theirs, ratio = (float(v) for v in found.groups())
    assert all(math.isfinite(v) for v in (ours, theirs, ratio))
    assert ours >= 0 and theirs >= 0 and ratio >= 0
    if theirs >= 0.5:  # times are printed to 0.05 ms; the ratio is unrounded
        low, high = (ours - 0.05) / (theirs + 0.05), (ours + 0.05) / (theirs - 0.05)
        assert low - 0.01 <= ratio <= high + 0.01


def test_when_benchmark_runs_then_chain_ratio_is_finite(tiny_report: str) -> None:
    assert _finite(rf"ratio ours/skimage \(chain, 192\): {NUMBER}", tiny_report) > 0


@pytest.mark.parametrize("kind", ["nuclei", "cells"])
def test_when_benchmark_runs_then_f1_scores_are_printed_and_sensible(
    tiny_report: str, kind: str
) -> None:
    line = rf"F1@0.5 {kind}\s+ours~skimage {NUMBER}\s+ours~truth {NUMBER}"
    line += rf"\s+skimage~truth {NUMBER}"
    found = re.search(line, tiny_report)
    assert found, f"no F1 line for {kind} in:\n{tiny_report}"
    same, ours, theirs = (float(v) for v in found.groups())
    assert 0.0 <= ours <= 1.0 and 0.0 <= theirs <= 1.0
    # Both chains do the same work, so their objects must largely coincide,
    # and both must find a good share of the planted objects.
    assert same >= 0.8
    assert min(ours, theirs) >= 0.4


def test_when_benchmark_runs_then_outputs_match_the_oracles(tiny_report: str) -> None:
    measure = _finite(r"cell measurements max rel diff " + NUMBER, tiny_report)
    texture = _finite(r"Haralick max rel diff " + NUMBER, tiny_report)
    slope = _finite(r"QC slope max diff " + NUMBER, tiny_report)
    assert measure < 1e-6
    assert texture < 1e-6
    assert slope < 1e-6
