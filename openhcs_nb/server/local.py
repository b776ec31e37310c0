"""Start an ``openhcs-server`` process on this machine and wait until it is ready.

The demo, ``%openhcs_connect --demo``, Binder and the tests all need a real
server next to them. This runs the console entry point in a child process
(exactly what an admin runs), waits for its ready file and reports the bound
endpoints; ``stop()`` sends SIGTERM, as systemd would.

By default the child is tied to this process (``--parent-pid``): when the
kernel that started it dies, even by SIGKILL, the server stops within about a
second, the same orderly way as on SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from openhcs_nb.errors import OpenHCSError


class ServerStartError(OpenHCSError, RuntimeError):
    """The server process exited or did not become ready; the log says why."""

    code = "server_start"


class LocalServer:
    """A server child process; ``args`` are what follows ``openhcs-server serve``."""

    def __init__(
        self,
        args: Sequence[str],
        workdir: Path | None = None,
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        ready_timeout: float = 120.0,
        module: str = "openhcs_nb.server.cli",
        tie_to_parent: bool = True,
    ):
        """``tie_to_parent=False`` lets the server outlive this process."""
        self.args = list(args)
        self.tie_to_parent = tie_to_parent
        self.module = module  # run as ``python -m <module> serve ...``
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="openhcs-server-"))
        self.env = env or {}
        self.log_path = log or self.workdir / "server.log"
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.event_address = ""
        self.ready_seconds = 0.0
        self.ready_info: dict[str, Any] = {}  # the ready file: ports, results root

    def start(self) -> LocalServer:
        """Start the process and block until it has bound its sockets.

        Raises
        ------
        ServerStartError
            The process exited first or was not ready in time.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", self.module, "serve", *self.args]
        command += ["--ready-file", str(ready)]
        if self.tie_to_parent:
            command += ["--parent-pid", str(os.getpid())]
        log: IO[bytes] = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + self.ready_timeout
        while not ready.exists():
            if self.process.poll() is not None:
                tail = self.log()[-4000:]
                raise ServerStartError(f"the server exited early:\n{tail}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError(
                    f"the server was not ready in {self.ready_timeout:.0f} s:\n"
                    f"{self.log()[-4000:]}"
                )
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.ready_info = info
        self.address, self.event_address = info["command"], info["events"]
        self.ready_seconds = float(info["seconds"])
        return self

    def __enter__(self) -> LocalServer:
        return self.start() if self.process is None else self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as in a crash: no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
