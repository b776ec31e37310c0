"""Run the real ruff on generated code: the formatter is the judge of layout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def ruff_command() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ruff")
    if found:
        return [found]
    try:
        import ruff  # noqa: F401
    except ImportError:
        pytest.skip("ruff is not installed (it is a dev dependency)")
    return [sys.executable, "-m", "ruff"]


def assert_ruff_clean(tmp_path: Path, codes: list[str]) -> None:
    for i, code in enumerate(codes):
        (tmp_path / f"p{i}.py").write_text(code, encoding="utf-8")
    ruff = ruff_command()
    common = ["--isolated", "--no-cache", "--line-length", "88"]
    fmt = subprocess.run(
        [*ruff, "format", "--check", "--diff", *common, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run(
        [
            *ruff,
            "check",
            *common,
            "--select",
            "E,F,W,I",
            "--ignore",
            "E501",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
