"""01_quickstart.ipynb in JupyterLab, driven in headless Chromium.

A real JupyterLab (loopback, token, every Jupyter/IPython folder in the test's
tmp dir) serves a copy of notebooks/; Playwright opens the quickstart, runs
all cells from the Run menu and then checks what a user sees: every well the
run asked for is done in the plate viewer, colouring by ``count`` gives wells
different colours, clicking a well draws its image (read back from the
canvas pixels), and the cell run while the plate was running printed that
the run was still going. Screenshots land in test-output/browser/.
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
    CI_WELL_COUNT,
    NOTEBOOKS,
    ROOT,
    kernel_env,
    kill_all,
    wait_until_gone,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

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
NOTEBOOK = "01_quickstart.ipynb"
CI_WELLS = ["A01", "A02", "A03", "B01", "B02", "B03"]
assert len(CI_WELLS) == CI_WELL_COUNT
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


def start_lab(base: Path) -> Lab:
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
    log = base / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class="
        "jupyterlab.handlers.announcements.NeverCheckForUpdate",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=base
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, process, log)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited:\n{log.read_text()[-3000:]}")
        try:
            lab.api("GET", "/api/status")
            return lab
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"JupyterLab not ready in 90 s:\n{log.read_text()[-3000:]}"
                ) from None
            time.sleep(0.2)


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


def run_all_cells(tab, lab: Lab) -> None:
    tab.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?reset&token={lab.token}")
    # The notebook can look idle while the kernel is still starting; Run All
    # does nothing then. The status bar says when the kernel is really ready.
    tab.locator("#jp-main-statusbar").get_by_text(
        "Python 3 (ipykernel) | Idle"
    ).wait_for(timeout=120 * SECOND)
    tab.get_by_role("menuitem", name="Run", exact=True).click()
    tab.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()


FINISHED_OR_FAILED = """() => {
  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
  const texts = outputs.map((o) => o.innerText);
  if (texts.some((t) => t.includes('connection closed'))) return 'closed';
  const error = texts.find((t) => /Traceback|Error: /.test(t));
  return error ? 'error: ' + error.slice(0, 2000) : null;
}"""

PLATE_CELLS = """() => Object.fromEntries(
  [...document.querySelectorAll('.ohnb-root .ohnb-cell')].map((c) => [
    c.dataset.well,
    {title: c.title, color: getComputedStyle(c).backgroundColor},
  ]))"""

CANVAS_STATS = """() => {
  const root = document.querySelector('.ohnb-root');
  const canvas = root.querySelector('canvas.ohnb-canvas');
  const {width, height} = canvas;
  const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let nonzero = 0, sum = 0;
  const levels = new Set();
  for (let i = 0; i < data.length; i += 4) {
    const v = data[i] + data[i + 1] + data[i + 2];
    if (v > 0) nonzero += 1;
    sum += v;
    if (levels.size < 5000) levels.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
  }
  return {well: root.querySelector('.ohnb-well .ohnb-title').textContent,
          width, height, nonzero, sum, levels: levels.size};
}"""


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


def test_when_quickstart_runs_in_jupyterlab_then_viewer_fills_and_kernel_responds(
    page, lab
):
    tab = page
    try:
        run_all_cells(tab, lab)
        outcome = wait_for_value(
            tab,
            FINISHED_OR_FAILED,
            bool,
            300,
            "the notebook did not reach its last cell",
        )
        assert outcome == "closed", outcome
        tab.screenshot(path=OUTPUT / "quickstart_notebook.png", full_page=True)

        # Every well the run asked for is done in the plate viewer.
        viewer = tab.locator(".ohnb-root")
        assert viewer.count() == 1
        cells = wait_for_value(
            tab,
            PLATE_CELLS,
            lambda v: all(
                v.get(w, {}).get("title", "").startswith(f"{w}: done") for w in CI_WELLS
            ),
            60,
            f"the viewer did not show {CI_WELLS} as done",
        )
        assert len(cells) == 24
        others = [w for w in cells if w not in CI_WELLS]
        assert not any(": done" in cells[w]["title"] for w in others)
        status_colors = {cells[w]["color"] for w in CI_WELLS}
        assert len(status_colors) == 1  # coloured by status: all alike
        assert viewer.locator(".ohnb-state").inner_text() == "done"
        counts = rf"{CI_WELL_COUNT} done . 0 failed . {CI_WELL_COUNT} wells"
        tab.get_by_text(re.compile(counts)).wait_for(timeout=30 * SECOND)
        viewer.screenshot(path=OUTPUT / "plate_by_status.png")

        # Coloured by a measurement, the wells differ.
        viewer.locator("select.ohnb-measurement").select_option("count")
        cells = wait_for_value(
            tab,
            PLATE_CELLS,
            lambda v: (
                len({v[w]["color"] for w in CI_WELLS}) >= 2
                and not status_colors & {v[w]["color"] for w in CI_WELLS}
            ),
            30,
            "colouring by count did not give the wells different colours",
        )
        assert all("count: " in cells[w]["title"] for w in CI_WELLS)
        viewer.screenshot(path=OUTPUT / "plate_by_count.png")

        # Clicking a well draws its image: real, varying pixels on the canvas.
        before = tab.evaluate(CANVAS_STATS)
        target = "B03" if before["well"] != "B03" else "A02"
        viewer.locator(f".ohnb-cell[data-well='{target}']").click()
        drawn = wait_for_value(
            tab,
            CANVAS_STATS,
            lambda s: (
                s["well"] == target and s["width"] > 1 and s["sum"] != before["sum"]
            ),
            60,
            f"clicking {target} did not draw its image",
        )
        pixels = drawn["width"] * drawn["height"]
        assert drawn["nonzero"] > pixels // 100, drawn
        assert drawn["levels"] > 50, drawn
        viewer.screenshot(path=OUTPUT / f"well_{target}.png")

        # The cell run during the plate run ran while the plate was running.
        printed = tab.locator(
            ".jp-OutputArea-output", has_text="kernel responsive"
        ).first.inner_text()
        match = re.search(
            r"while the run was (\w+) \((\d+)/(\d+) wells finished\)", printed
        )
        assert match, printed
        state, finished, total = match.groups()
        assert state in {"queued", "running"}, printed
        assert int(finished) < int(total) == CI_WELL_COUNT, printed
        assert tab.page_errors == []
    except BaseException:
        tab.screenshot(path=OUTPUT / "failure.png", full_page=True)
        print(f"JupyterLab log:\n{lab.log.read_text()[-4000:]}")
        raise
