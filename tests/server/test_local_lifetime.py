"""A LocalServer's child does not outlive the process that started it.

A real parent process starts a demo server, reports the server's pid and is
then SIGKILLed, as a crashed kernel would be. The server notices through
``--parent-pid`` and shuts down in order, taking its workers with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

PARENT = """
import sys, time
from pathlib import Path
from openhcs_nb.server.local import LocalServer

server = LocalServer(
    ["--demo", "--port", "0", "--log-level", "WARNING", "--workers", "1"],
    Path(sys.argv[1]),
).start()
print(server.process.pid, flush=True)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for init counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if not gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if not gone(p)]
    return alive


def test_when_the_parent_is_killed_then_server_and_workers_exit(
    tmp_path: Path,
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "server")],
        stdout=subprocess.PIPE,
        text=True,
    )
    family: list[int] = []
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"parent printed {line!r}"
        server = int(line)
        kids = psutil.Process(server).children(recursive=True)
        family = [server, *(k.pid for k in kids)]
        assert kids, "a demo server runs at least one worker process"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        left = wait_gone(family, timeout=10)
        log = (tmp_path / "server" / "server.log").read_text()
        assert left == [], f"still running: {left}\n{log[-2000:]}"
    finally:
        parent.kill()
        for pid in family:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
