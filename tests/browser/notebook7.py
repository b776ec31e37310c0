"""A real Jupyter Notebook 7 for browser tests, the sibling of ``lab.py``.

``start_notebook7`` starts ``python -m notebook`` on loopback with a token and
every Jupyter folder in the test's tmp dir, serving a copy of notebooks/ (the
same settings as JupyterLab: no news, no update checks); ``notebook7`` is the
fixture. ``open_notebook7`` opens a notebook in its own Notebook 7 page and
waits until the kernel says idle through the REST API, so a test does not
depend on how Notebook 7 draws its kernel indicator.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab import CHROMIUM, SECOND, SETTINGS, Lab, free_port, needs, stop_lab
from notebook_env import NOTEBOOKS, kernel_env, kill_all, wait_until_gone


def start_notebook7(base: Path) -> Lab:
    """Notebook 7 on 127.0.0.1 and a free port; returns when its API answers."""
    env = kernel_env(base)
    jupyter = base / "jupyter"
    dirs = {
        "JUPYTER_CONFIG_DIR": jupyter / "config",
        "JUPYTER_DATA_DIR": jupyter / "data",
        "JUPYTERLAB_SETTINGS_DIR": jupyter / "settings",
        "JUPYTERLAB_WORKSPACES_DIR": jupyter / "workspaces",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    for name, values in SETTINGS.items():
        path = dirs["JUPYTERLAB_SETTINGS_DIR"] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    root = base / "notebooks"
    shutil.copytree(NOTEBOOKS, root)
    port, token = free_port(), secrets.token_hex(16)
    log = base / "notebook7.log"
    command = [
        sys.executable,
        "-m",
        "notebook",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=base
        )
    server = Lab(f"http://127.0.0.1:{port}", token, process, log)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Notebook 7 exited:\n{log.read_text()[-3000:]}")
        try:
            server.api("GET", "/api/status")
            return server
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"Notebook 7 not ready in 90 s:\n{log.read_text()[-3000:]}"
                ) from None
            time.sleep(0.2)


def open_notebook7(tab, server: Lab, notebook: str, timeout: float = 120) -> None:
    """Open ``notebook`` in Notebook 7 and wait until its kernel is idle."""
    tab.goto(f"{server.url}/notebooks/{notebook}?token={server.token}")
    tab.locator(".jp-Notebook").wait_for(timeout=timeout * SECOND)
    deadline = time.monotonic() + timeout
    while True:
        try:
            kernels = server.api("GET", "/api/kernels") or []
        except OSError:  # a kernel still starting can make the listing fail
            kernels = []
        if any(k.get("execution_state") == "idle" for k in kernels):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no idle kernel in {timeout} s: {kernels!r}")
        tab.wait_for_timeout(250)


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory):
    """One Notebook 7 server for a test module; every process it started ends."""
    if not CHROMIUM.exists():
        needs(str(CHROMIUM))
    base = tmp_path_factory.mktemp("notebook7")
    started = start_notebook7(base)
    started.base = base
    yield started
    stop_lab(started)
    leftovers = wait_until_gone(base)
    kill_all(leftovers)
    assert leftovers == [], f"processes outlived Notebook 7: {leftovers}"
