"""What the notebook and browser tests share: an isolated demo cache, a kernel
environment, and a check that no server outlives its notebook.

Each test gets its own ``OPENHCS_NB_CACHE`` whose demo plate is a symlink to
the real cached one (generated once), so the plate is not rebuilt; a demo
server without ``--results`` keeps its jobs in its own temporary folder.
``TMPDIR`` points into the test's folder too: every server a notebook starts
(``LocalServer`` works in ``mkdtemp()``) then names that folder on its command
line, which is how :func:`processes_under` finds leftovers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from openhcs_nb.plates.demo import demo_path, demo_plate
from openhcs_nb.plates.synthetic import truth_path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
#: The wells the notebooks run in tests (OPENHCS_NB_DEMO_WELLS): 6 of 24.
CI_WELLS = "A01:B03"
CI_WELL_COUNT = 6
#: Variables that would point a notebook at a facility instead of the demo.
FACILITY_VARIABLES = (
    "OPENHCS_NB_SERVER",
    "OPENHCS_NB_SERVER_KEY",
    "OMERO_SESSION_KEY",
    "OMERO_PLATE_ID",
)


def demo_cache(base: Path) -> Path:
    """A fresh cache folder under ``base`` that links to the real demo plate."""
    real = demo_path()
    demo_plate()  # generate it once if this machine has none yet
    cache = base / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    for source in (real, truth_path(real, "ome-zarr")):
        link = cache / source.name
        if not link.exists():
            link.symlink_to(source)
    return cache


def kernel_env(base: Path) -> dict[str, str]:
    """The environment a test's kernels (and their servers) should run with."""
    tmp = base / "tmp"
    for sub in ("tmp", "ipython", "runtime"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in FACILITY_VARIABLES}
    env.update(
        OPENHCS_NB_CACHE=str(demo_cache(base)),
        OPENHCS_NB_DEMO_WELLS=CI_WELLS,
        TMPDIR=str(tmp),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        PYTHONUNBUFFERED="1",
    )
    return env


def processes_under(path: Path) -> list[tuple[int, str]]:
    """``(pid, command line)`` of live processes whose command line names ``path``."""
    needle = str(path)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":  # exited, waiting for its parent to reap it
            continue
        command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if needle in command:
            found.append((int(entry.name), command))
    return found


def wait_until_gone(path: Path, timeout: float = 45.0) -> list[tuple[int, str]]:
    """Poll until no process names ``path``; returns those still alive after it."""
    deadline = time.monotonic() + timeout
    while True:
        alive = processes_under(path)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.25)


def kill_all(processes: list[tuple[int, str]]) -> None:
    """SIGKILL leftovers of this test (found by :func:`processes_under`)."""
    import signal

    for pid, _ in processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
