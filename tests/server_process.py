"""A real ``openhcs-server`` process on 127.0.0.1 for integration tests.

The server is started exactly as an admin would: the console script with a
TOML config file. Ports are picked by the OS on first start and reused on
restart, so a client can reconnect to the same address after a crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

READY_TIMEOUT = 60.0


class ServerProcess:
    """Start, stop, kill and restart one server with its own results root."""

    def __init__(
        self,
        base: Path,
        plates_root: Path,
        *,
        workers: int = 2,
        max_concurrent: int = 2,
        demo: bool = False,
        extra: str = "",
        env: dict[str, str] | None = None,
    ):
        self.base = base
        self.plates_root = plates_root
        self.results_root = base / "results"
        self.workers = workers
        self.max_concurrent = max_concurrent
        self.demo = demo
        self.extra = extra
        self.env = env or {}
        self.address = "tcp://127.0.0.1:0"
        self.event_address = "tcp://127.0.0.1:0"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = base / "server.log"
        self.ready_seconds = 0.0

    def _config(self) -> Path:
        path = self.base / "server.toml"
        path.write_text(
            f"""
[server]
command_address = "{self.address}"
event_address = "{self.event_address}"

[plates]
roots = ["{self.plates_root}"]
demo = {"true" if self.demo else "false"}

[results]
root = "{self.results_root}"

[execution]
workers = {self.workers}
max_concurrent_executions = {self.max_concurrent}
max_queued_per_user = 50
{self.extra}
"""
        )
        return path

    def start(self) -> ServerProcess:
        """Start the process and wait until it has bound its sockets."""
        self.base.mkdir(parents=True, exist_ok=True)
        ready = self.base / "ready.json"
        ready.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "openhcs_nb.server.cli",
                "serve",
                "--config",
                str(self._config()),
                "--ready-file",
                str(ready),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"server not ready in {READY_TIMEOUT} s:\n{self.log()}"
                )
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.address, self.event_address = info["command"], info["events"]
        self.ready_seconds = info["seconds"]
        return self

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as systemd would; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid
