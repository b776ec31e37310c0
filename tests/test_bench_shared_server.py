"""The shared-server load benchmark runs at a tiny size and reports its invariants.

Only what must hold today is asserted: every honest run completes with each
well exactly once and the server survives the attacker. The leak figures are
printed, not asserted here (the isolation tests own them).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_shared_server.py"


@pytest.mark.slow
def test_when_three_users_share_a_server_then_every_honest_run_completes():
    tiny = ["--users", "3", "--wells", "1", "--previews", "1", "--size", "128"]
    done = subprocess.run(
        [sys.executable, str(BENCH), *tiny, "--limit", "120"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-4000:]
    assert "honest runs complete, each well once: 2/2" in out, out
    assert re.search(r"lone run \(user01 alone\): [\d.]+ s, complete", out), out
    assert "server alive at the end: yes" in out, out
    assert re.search(r"p50 [\d.]+ ms, p99 [\d.]+ ms", out), out
    assert re.search(r"events of others the attacker received: \d+", out), out
    assert re.search(r"server peak RSS: \d+ MiB alone, \d+ MiB with workers", out), out
