"""A real JupyterLab and headless Chromium for browser tests (shared helpers).

``lab`` starts JupyterLab on loopback with a token and every Jupyter folder in
the test's tmp dir, serving a copy of notebooks/; ``page`` is a Playwright tab
in Debian's /usr/bin/chromium. Import the fixtures into a test module with
``from lab import lab, page  # noqa: F401`` after putting this folder on sys.path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
from notebook_env import (
    NOTEBOOKS,
    ROOT,
    kernel_env,
    kill_all,
    wait_until_gone,
)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
OUTPUT = ROOT / "test-output" / "browser"
SETTINGS = {  # JupyterLab user settings: no news, no update checks, no windowing
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none"
    },
}
SECOND = 1000  # Playwright timeouts are in milliseconds


def needs(what: str) -> None:
    """Skip without ``what`` locally; under CI (CI=true) a missing tool fails."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is missing on CI (./run test installs it)")
    pytest.skip(f"{what} is missing (apt-get install -y chromium)")


@dataclass
class Lab:
    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jupyter(base: Path, module: str, extra: list[str], what: str) -> Lab:
    """``python -m MODULE`` (a Jupyter server app) on loopback, every folder in
    ``base``, serving a copy of notebooks/; returns when its API answers."""
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
    log = base / f"{module}.log"
    command = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        *extra,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=base
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, process, log)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{log.read_text()[-3000:]}")
        try:
            lab.api("GET", "/api/status")
            return lab
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"{what} not ready in 90 s:\n{log.read_text()[-3000:]}"
                ) from None
            time.sleep(0.2)


def start_lab(base: Path) -> Lab:
    """JupyterLab, with no news and no update checks."""
    extra = [
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class="
        "jupyterlab.handlers.announcements.NeverCheckForUpdate",
    ]
    return start_jupyter(base, "jupyterlab", extra, "JupyterLab")


def stop_lab(lab: Lab) -> None:
    """Shut the kernels down as a user would (their demo servers stop), then Lab."""
    try:
        for kernel in lab.api("GET", "/api/kernels") or []:
            lab.api("DELETE", f"/api/kernels/{kernel['id']}")
    except OSError:
        pass
    lab.process.terminate()
    try:
        lab.process.wait(30)
    except subprocess.TimeoutExpired:
        lab.process.kill()
        lab.process.wait(10)


@pytest.fixture
def lab(tmp_path):
    if not CHROMIUM.exists():
        needs(str(CHROMIUM))
    started = start_lab(tmp_path)
    yield started
    stop_lab(started)
    leftovers = wait_until_gone(tmp_path)
    kill_all(leftovers)
    assert leftovers == [], f"processes outlived JupyterLab: {leftovers}"


@pytest.fixture
def page(lab):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        needs("the playwright package")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.page_errors = []
        tab.on("pageerror", lambda exc: tab.page_errors.append(str(exc)))
        try:
            yield tab
        finally:
            browser.close()


def open_notebook(tab, lab: Lab, notebook: str) -> None:
    """Open ``notebook`` and wait until its kernel is really idle."""
    tab.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
    # The notebook can look idle while the kernel is still starting; Run All
    # does nothing then. The status bar says when the kernel is really ready.
    tab.locator("#jp-main-statusbar").get_by_text(
        "Python 3 (ipykernel) | Idle"
    ).wait_for(timeout=120 * SECOND)


def run_all_cells(tab, lab: Lab, notebook: str) -> None:
    open_notebook(tab, lab, notebook)
    tab.get_by_role("menuitem", name="Run", exact=True).click()
    tab.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()


def wait_for_value(tab, script: str, check, timeout: float, what: str):
    """Poll ``script`` in the page until ``check(value)``; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = tab.evaluate(script)
        if check(value):
            return value
        tab.wait_for_timeout(250)
    raise AssertionError(f"{what} (last seen: {value!r})")
