"""A real Dask cluster on 127.0.0.1: the ``dask scheduler`` and ``dask worker`` CLIs.

Each process is started as an admin would start it (no in-process cluster),
on ports the OS picks, with its files under the test's temporary folder. The
test talks to the scheduler through its own ``distributed.Client`` only to
look (which worker runs what) and to kill a worker the way a node dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_DASK = str(Path(sys.executable).with_name("dask"))


class DaskCluster:
    """One scheduler and ``workers`` single-threaded worker processes."""

    def __init__(self, base: Path, workers: int = 2) -> None:
        self.base = base
        self.workers = workers
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""
        self.client: Any = None

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.base / f"{name}.log").open("wb")
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "false"}
        proc = subprocess.Popen(
            [_DASK, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.base,
            env=env,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 60.0) -> DaskCluster:
        """Start the scheduler and the workers; wait until all workers joined."""
        from distributed import Client

        self.base.mkdir(parents=True, exist_ok=True)
        file = self.base / "scheduler.json"
        self._spawn(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(file),
            ],
        )
        deadline = time.monotonic() + timeout
        while not file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no scheduler: {self.log('scheduler')}")
            time.sleep(0.1)
        self.address = json.loads(file.read_text())["address"]
        for index in range(self.workers):
            self._spawn(
                f"worker{index}",
                [
                    "worker",
                    self.address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--name",
                    f"w{index}",
                    "--local-directory",
                    str(self.base / f"w{index}"),
                ],
            )
        self.client = Client(self.address, timeout=timeout, set_as_default=False)
        self.client.wait_for_workers(self.workers, timeout=timeout)
        return self

    def log(self, name: str) -> str:
        """What one process printed so far."""
        path = self.base / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def running_wells(self) -> dict[str, list[str]]:
        """Worker address -> keys of the openhcs tasks it is processing now."""
        return {
            worker: [str(k) for k in keys if str(k).startswith("openhcs-well-")]
            for worker, keys in self.client.processing().items()
        }

    def worker_pid(self, address: str) -> int:
        """The process id of the worker at ``address``."""
        return int(self.client.run(os.getpid, workers=[address])[address])

    def task_prefixes(self) -> list[str]:
        """Names of every task group the scheduler has seen."""
        return sorted(
            self.client.run_on_scheduler(
                lambda dask_scheduler: list(dask_scheduler.task_prefixes)
            )
        )

    def stop(self) -> None:
        """Kill every process (and the nannies' children) and close the client."""
        if self.client is not None:
            self.client.close()
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
