"""A real Jupyter Notebook 7 for browser tests, the sibling of ``lab.py``.

``start_notebook7`` starts ``python -m notebook`` on loopback with a token and
every Jupyter folder in the test's tmp dir, serving a copy of notebooks/ (the
same settings as JupyterLab: no news, no update checks); ``notebook7`` is the
fixture. ``open_notebook7`` opens a notebook in its own Notebook 7 page and
waits until the kernel says idle through the REST API, so a test does not
depend on how Notebook 7 draws its kernel indicator.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lab import CHROMIUM, SECOND, Lab, needs, start_jupyter, stop_lab
from notebook_env import kill_all, wait_until_gone


def start_notebook7(base: Path) -> Lab:
    """Notebook 7 on 127.0.0.1 and a free port; returns when its API answers."""
    return start_jupyter(base, "notebook", [], "Notebook 7")


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
