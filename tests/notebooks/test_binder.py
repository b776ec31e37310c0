"""binder/: the start hook serves the demo plate, and the notebooks find it.

``binder/start`` is what Binder runs before the notebook server; here it runs a
small Python command instead, which connects where the hook said
(``OPENHCS_NB_SERVER``) and lists the plates.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from notebook_env import ROOT, kernel_env, kill_all

BINDER = ROOT / "binder"
CLIENT = """
import os, openhcs_nb
conn = openhcs_nb.connect(os.environ["OPENHCS_NB_SERVER"], timeout=60, connect_timeout=60)
print("server", os.environ["OPENHCS_NB_SERVER"], "plates", conn.plates())
conn.close()
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop(pid: int, timeout: float = 30.0) -> bool:
    """SIGTERM ``pid`` and wait; True if it exited, else SIGKILL and False."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            kill_all([(pid, "demo server")])
            return False
        time.sleep(0.1)
    return True


def two_free_ports() -> int:
    """A port p with p + 1 free too (the demo server binds both)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports")


def test_when_binder_files_are_read_then_they_install_the_package_with_extras():
    requirements = (BINDER / "requirements.txt").read_text().split()
    assert "-e" in requirements and ".[jupyter,server]" in requirements
    for hook in ("start", "postBuild"):
        assert os.access(BINDER / hook, os.X_OK), hook


@pytest.mark.slow
def test_when_binder_start_runs_then_demo_server_answers_at_the_given_address(
    tmp_path,
):
    env = kernel_env(tmp_path)
    port = two_free_ports()
    env["OPENHCS_NB_DEMO_PORT"] = str(port)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    cache = Path(env["OPENHCS_NB_CACHE"])
    try:
        done = subprocess.run(
            [str(BINDER / "start"), sys.executable, "-c", CLIENT],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert f"server tcp://127.0.0.1:{port} plates ['demo']" in done.stdout
    finally:
        pid_file = cache / "demo-server.pid"
        stopped = pid_file.exists() and stop(int(pid_file.read_text()))
    assert stopped, "the demo server did not leave its pid or ignored SIGTERM"
