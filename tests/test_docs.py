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
    pages = ("installation", "quickstart", "pipeline-model", "analysis", "protocol")
    for page in (*pages, "server"):
        assert (site / page / "index.html").exists(), page


def test_when_the_analysis_page_is_pasted_then_its_python_runs():
    text = (ROOT / "docs" / "analysis.md").read_text()
    blocks = [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]
    assert blocks
    for block in blocks:
        done = subprocess.run(
            [sys.executable, "-c", block], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "identify_secondary" in done.stdout
