"""The plugin is its own distribution: it installs, and the core never imports it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "server" / "omero_openhcs"


def test_when_pip_installs_the_distribution_then_templates_and_static_come_along(
    tmp_path,
):
    source = tmp_path / "omero_openhcs-src"  # pip builds in the tree: a copy's
    shutil.copytree(
        DIST,
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    target = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PIP_NO_CACHE_DIR": "1", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    package = target / "omero_openhcs"
    assert (package / "templates" / "omero_openhcs" / "results.html").is_file()
    plugin = (
        package
        / "templates/omero_openhcs/webclient_plugins/right_plugin.openhcs.js.html"
    )
    assert plugin.is_file()
    assert (package / "static" / "omero_openhcs" / "results.js").is_file()
    metadata = next(target.glob("omero_openhcs-*.dist-info")) / "METADATA"
    assert "AGPL" in metadata.read_text()


def test_when_the_core_is_searched_then_nothing_imports_the_plugin():
    offenders = [
        path.relative_to(ROOT)
        for path in (ROOT / "openhcs_nb").rglob("*.py")
        if "omero_openhcs" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
