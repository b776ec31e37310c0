"""docs/admin.md: every ``sh`` block runs, in order, as an admin would paste it.

The page's paths are an admin's (``/etc/openhcs-nb``, ``/var/lib/openhcs-nb``);
the test moves both into a scratch folder by replacing those two prefixes in
the text, writes the page's ``toml`` block to the configuration path it names
in its first line, and runs each ``sh`` block with bash ``-e``, with the
project's ``openhcs-server`` first on ``PATH``. ``NOT_RUN`` lists the blocks
that need systemd, pip or a running server, each with the test that checks
the same thing; the table is checked to be exact.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "admin.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = {
    "python3 -m venv /opt/openhcs-nb/venv": "installs from PyPI (./run does it)",
    "systemctl daemon-reload": "needs systemd (tests/server/test_daemon.py runs serve)",
    "curl -s http://127.0.0.1:9464/metrics | grep openhcs_queue_depth": (
        "needs the running server (tests/server/test_metrics.py scrapes it)"
    ),
    "systemctl stop openhcs-server": "needs systemd and PyPI (test_upgrade.py)",
}


def blocks() -> list[tuple[str, str]]:
    return [(info.strip(), body) for info, body in FENCE.findall(PAGE.read_text())]


def test_not_run_names_only_blocks_that_exist():
    firsts = {body.splitlines()[0] for info, body in blocks() if info == "sh"}
    assert set(NOT_RUN) <= firsts


def test_admin_page_runs_as_written(tmp_path):
    etc, var = tmp_path / "etc", tmp_path / "var"

    def moved(text: str) -> str:
        return text.replace("/etc/openhcs-nb", str(etc)).replace(
            "/var/lib/openhcs-nb", str(var)
        )

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENHCS_NB_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    outputs: list[str] = []
    for info, body in blocks():
        first = body.splitlines()[0]
        if info == "toml":
            target = Path(moved(first.removeprefix("# ").strip()))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(moved(body))
            continue
        if info != "sh" or first in NOT_RUN:
            continue
        done = subprocess.run(
            ["bash", "-e", "-c", moved(body)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{first}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    text = "\n".join(outputs)
    assert "is a valid configuration" in text
    added = json.loads(next(out for out in outputs if out.startswith("{")))
    assert added["user"] == "alice"
    assert Path(added["secret_key_file"]).stat().st_mode & 0o077 == 0
    assert "revoked 1 key(s) of 'alice'" in text
    assert "live figures: no answer from http://127.0.0.1:9464/metrics" in text
    assert "would remove 0 runs" in text
    assert (var / "backups" / "jobs.sqlite3").stat().st_mode & 0o077 == 0


@pytest.fixture(autouse=True)
def _page_exists():
    assert PAGE.is_file()
