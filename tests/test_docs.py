"""The documentation site builds with --strict and documents every function."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from openhcs_nb.functions import builtin_catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_when_docs_built_strictly_then_every_catalogue_function_is_documented(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reference = (site / "functions" / "index.html").read_text()
    for name in builtin_catalogue():
        assert f"<code>{name}</code>" in reference, name
    for page in ("installation", "quickstart", "pipeline-model", "protocol", "server"):
        assert (site / page / "index.html").exists(), page
