"""A real ``openhcs-server`` process on 127.0.0.1 for integration tests.

The server is started exactly as an admin would: with a TOML config file.
Ports are picked by the OS on first start and reused on restart, so a client
can reconnect to the same address after a crash.
"""

from __future__ import annotations

from pathlib import Path

from openhcs_nb.server.local import LocalServer


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
        args: tuple[str, ...] = (),
        module: str = "openhcs_nb.server.cli",
        limits: dict[str, object] | None = None,
    ):
        """``limits`` overrides ``[limits]`` keys; by default tests may send
        commands as fast as they like (``requests_per_second = 0``)."""
        self.base = base
        self.limits: dict[str, object] = {
            "max_queued_per_user": 50,
            "requests_per_second": 0,
            **(limits or {}),
        }
        self.args, self.module = args, module  # extra CLI args, entry module
        self.plates_root = plates_root
        self.results_root = base / "results"
        self.workers = workers
        self.max_concurrent = max_concurrent
        self.demo = demo
        self.extra = extra
        self.env = env or {}
        self.address = "tcp://127.0.0.1:0"
        self.event_address = "tcp://127.0.0.1:0"
        self.ready_seconds = 0.0
        self._server: LocalServer | None = None

    def _config(self) -> Path:
        self.base.mkdir(parents=True, exist_ok=True)
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

[limits]
{_toml_table(self.limits)}

[execution]
workers = {self.workers}
max_concurrent_executions = {self.max_concurrent}
{self.extra}
"""
        )
        return path

    def start(self) -> ServerProcess:
        """Start (or restart, on the same ports) and wait until ready."""
        server = LocalServer(
            ["--config", str(self._config()), *self.args],
            self.base,
            env=self.env,
            module=self.module,
        )
        self._server = server.start()
        self.address, self.event_address = server.address, server.event_address
        self.ready_seconds = server.ready_seconds
        return self

    @property
    def ready_info(self) -> dict:
        """What the server wrote to its ready file (ports, results root)."""
        return self._server.ready_info if self._server else {}

    def log(self) -> str:
        """Everything the server printed so far."""
        return self._server.log() if self._server else ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, as systemd would; returns the exit code."""
        assert self._server is not None
        return self._server.stop(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self._server is not None:
            self._server.kill()


def _toml_table(values: dict[str, object]) -> str:
    """``key = value`` lines for the scalars of one TOML table."""
    lines = []
    for key, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else repr(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines)
