"""The server side of ``bench_shared_server.py``: plate, config, RSS sampler."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from _shared_attacker import PLATE, WORKERS

from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate

if TYPE_CHECKING:
    from multiuser import Users


def make_plate(root: Path, wells: int, size: int) -> None:
    columns = max(3, -(-wells // 2))
    spec = SyntheticPlateSpec(
        rows=2,
        columns=columns,
        fields=1,
        channels=("DAPI", "GFP"),
        shape=(size, size),
        seed=7,
        min_nuclei=4,
        max_nuclei=12,
    )
    generate_plate(spec, root / PLATE, format="ome-zarr")


def write_config(base: Path, plates: Path, users: Users, concurrent: int) -> Path:
    path = base / "server.toml"
    path.write_text(
        f"""
[server]
command_address = "tcp://127.0.0.1:0"
event_address = "tcp://127.0.0.1:0"

[plates]
roots = ["{plates}"]

[results]
root = "{base / "results"}"

[execution]
workers = {WORKERS}
max_concurrent_executions = {concurrent}

{users.security_toml}"""
    )
    return path


class RssSampler(threading.Thread):
    """Peak RSS of the server alone and with its children, every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.proc = psutil.Process(pid)
        self.stop = threading.Event()
        self.peak_server = 0
        self.peak_total = 0
        self.samples = 0
        self.phase = "start"  # what was going on; set by the benchmark
        self.peak_phase = ""
        self.peaks: dict[str, int] = {}  # phase -> the server's peak RSS in it

    def sample(self) -> tuple[int, int]:
        server = self.proc.memory_info().rss
        total = server
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return server, total

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                server, total = self.sample()
            except psutil.Error:
                return
            if server > self.peak_server:
                self.peak_server, self.peak_phase = server, self.phase
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), server)
            self.peak_total = max(self.peak_total, total)
            self.samples += 1
