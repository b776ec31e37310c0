"""Server configuration: one TOML file, every key overridable from the environment.

Rules:

- The sections and keys are exactly the fields of the dataclasses below. An unknown
  section or key in the file is an error that names it, so typos cannot pass silently.
- ``OPENHCS_NB_<SECTION>_<KEY>`` (upper case) overrides ``[section] key`` from the
  file, e.g. ``OPENHCS_NB_EXECUTION_WORKERS=4``. Environment text is converted to
  the field's type: integers, floats, booleans (``1/0, true/false, yes/no, on/off``),
  lists as comma-separated values, and paths. An empty value unsets an optional path.
- Relative paths in the file are relative to the file's folder; relative paths in
  the environment are relative to the working directory. ``~`` is expanded.
- :meth:`ServerConfig.validate` holds the cross-field rules, above all: binding to
  anything but loopback requires CurveZMQ keys. ``load_config`` always validates.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from openhcs_nb.errors import OpenHCSError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)

ENV_PREFIX = "OPENHCS_NB_"
_LOCAL_TRANSPORTS = ("ipc://", "inproc://")
_LOOPBACK_NAMES = frozenset({"localhost", "lo"})


class ConfigError(OpenHCSError, ValueError):
    """A setting is missing, malformed or inconsistent; the server does not start."""

    code = "config_error"

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


def _cpu_count() -> int:
    return os.cpu_count() or 1


def _default_results_root() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(data_home).expanduser() / "openhcs-nb"


@dataclass(frozen=True)
class ServerSection:
    """Where the two sockets bind and how large their queues and messages may be."""

    command_address: str = "tcp://127.0.0.1:7710"
    event_address: str = "tcp://127.0.0.1:7711"
    max_message_bytes: int = 64 * 1024 * 1024
    send_hwm: int = 10_000
    recv_hwm: int = 1_000


@dataclass(frozen=True)
class PlatesSection:
    """Plates open only under ``roots``; ``demo`` offers the synthetic plate."""

    roots: tuple[Path, ...] = ()
    demo: bool = False


@dataclass(frozen=True)
class ResultsSection:
    """The job database, audit log and result stores live under ``root``."""

    root: Path = field(default_factory=_default_results_root)


@dataclass(frozen=True)
class ExecutionSection:
    """Worker processes, GPU placement, queue limits and preview size."""

    workers: int = field(default_factory=_cpu_count)
    gpus: tuple[int, ...] = ()
    max_concurrent_executions: int = 2
    max_queued_per_user: int = 20
    preview_size: int = 256
    cancel_grace_s: float = 5.0


@dataclass(frozen=True)
class SecuritySection:
    """CurveZMQ keys; ``require_curve`` forces them even on loopback."""

    server_secret_key: Path | None = None
    authorized_keys: Path | None = None
    require_curve: bool = False


@dataclass(frozen=True)
class OmeroSection:
    """The OMERO source and write-back; nothing reads it while disabled.

    ``test_double`` is a test seam only: it points at a description of an
    in-process OMERO double and must never be set in production.
    """

    enabled: bool = False
    host: str = "localhost"
    port: int = 4064
    data_dir: Path | None = None
    managed_dir: Path | None = None
    pixel_paths: str = "original,romio,ice"
    labels: str = "rois"
    object_table: bool = True
    replace: bool = True
    max_rois_per_image: int = 5000
    keepalive_s: float = 60.0
    writeback_attempts: int = 3
    retry_delay_s: float = 2.0
    test_double: Path | None = None


@dataclass(frozen=True)
class AuditSection:
    """The JSON-lines audit log; ``path`` defaults to ``<results root>/audit.jsonl``."""

    path: Path | None = None
    fsync: bool = False


@dataclass(frozen=True)
class ServerConfig:
    """The whole server configuration; build it with :func:`load_config`."""

    server: ServerSection = field(default_factory=ServerSection)
    plates: PlatesSection = field(default_factory=PlatesSection)
    results: ResultsSection = field(default_factory=ResultsSection)
    execution: ExecutionSection = field(default_factory=ExecutionSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    omero: OmeroSection = field(default_factory=OmeroSection)
    audit: AuditSection = field(default_factory=AuditSection)

    @property
    def curve_required(self) -> bool:
        """Whether clients must use CurveZMQ: asked for, or any non-loopback bind."""
        return (
            self.security.require_curve
            or not is_loopback_address(self.server.command_address)
            or not is_loopback_address(self.server.event_address)
        )

    @property
    def audit_path(self) -> Path:
        """The audit log file, defaulting to ``<results root>/audit.jsonl``."""
        return self.audit.path or self.results.root / "audit.jsonl"

    @property
    def jobs_path(self) -> Path:
        """The SQLite job store, always ``<results root>/jobs.sqlite3``."""
        return self.results.root / "jobs.sqlite3"

    def validate(self) -> None:
        """Check the rules that span several keys.

        Raises
        ------
        ConfigError
            Naming the first offending key; the server must not start.
        """
        for key in ("command_address", "event_address"):
            _check_address(f"[server] {key}", getattr(self.server, key))
        ephemeral = _split_tcp(self.server.command_address)[1] in ("0", "*")
        if self.server.command_address == self.server.event_address and not ephemeral:
            raise ConfigError(
                "[server] event_address", "must differ from [server] command_address"
            )
        if self.curve_required:
            for key in ("server_secret_key", "authorized_keys"):
                if getattr(self.security, key) is None:
                    raise ConfigError(
                        f"[security] {key}",
                        "is required because the server binds a non-loopback "
                        "address or require_curve is true; create keys with "
                        "'openhcs-server keys generate DIR'",
                    )
        if self.omero.enabled:
            from openhcs_nb.omero.settings import omero_settings

            try:
                omero_settings(self)
            except ValueError as exc:
                raise ConfigError("[omero]", str(exc)) from exc
        minimums = {
            "[server] max_message_bytes": (self.server.max_message_bytes, 1),
            "[server] send_hwm": (self.server.send_hwm, 0),
            "[server] recv_hwm": (self.server.recv_hwm, 0),
            "[execution] workers": (self.execution.workers, 1),
            "[execution] max_concurrent_executions": (
                self.execution.max_concurrent_executions,
                1,
            ),
            "[execution] max_queued_per_user": (self.execution.max_queued_per_user, 1),
            "[execution] preview_size": (self.execution.preview_size, 16),
            "[execution] cancel_grace_s": (self.execution.cancel_grace_s, 0),
            "[omero] port": (self.omero.port, 1),
        }
        for where, (value, least) in minimums.items():
            if value < least:
                raise ConfigError(where, f"must be at least {least}, got {value}")
        if self.omero.port > 65535:
            raise ConfigError(
                "[omero] port", f"must be at most 65535, got {self.omero.port}"
            )
        if any(gpu < 0 for gpu in self.execution.gpus):
            raise ConfigError("[execution] gpus", "device ids must be >= 0")


# section name -> section dataclass, in file order
_SECTIONS: dict[str, type] = get_type_hints(ServerConfig)


def env_name(section: str, key: str) -> str:
    """Return the environment variable that overrides ``[section] key``."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def is_loopback_address(address: str) -> bool:
    """Tell whether a ZeroMQ bind address is reachable only from this machine.

    ``ipc://`` and ``inproc://`` are local; ``tcp://`` is local when its host is
    ``localhost``, the ``lo`` interface or a loopback IP (127.0.0.0/8, ::1).
    ``*`` and ``0.0.0.0`` are not.
    """
    if address.startswith(_LOCAL_TRANSPORTS):
        return True
    host = _split_tcp(address)[0]
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_tcp(address: str) -> tuple[str, str]:
    if not address.startswith("tcp://") or ":" not in address[6:]:
        return "", ""
    host, _, port = address[6:].rpartition(":")
    return host.removeprefix("[").removesuffix("]"), port


def _check_address(where: str, address: str) -> None:
    if address.startswith(_LOCAL_TRANSPORTS):
        return
    host, port = _split_tcp(address)
    if not host:
        raise ConfigError(
            where,
            f"expected 'tcp://HOST:PORT' (or ipc://, inproc://), got {address!r}",
        )
    if port != "*" and not (port.isdigit() and 0 <= int(port) <= 65535):
        raise ConfigError(where, f"port must be 0-65535 or '*', got {port!r}")


def load_config(path: Path | None, env: Mapping[str, str] = os.environ) -> ServerConfig:
    """Read a TOML file (or only defaults when ``path`` is None), apply the environment.

    Raises
    ------
    ConfigError
        The file is missing or not TOML, a key is unknown or has the wrong type, an
        environment value cannot be converted, or :meth:`ServerConfig.validate`
        fails. The message names the key or variable.
    """
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        raw = _read_toml(path)
        base = path.expanduser().absolute().parent
    origin = str(path) if path is not None else "defaults"
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = raw.pop(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] in {origin}", "must be a table")
        sections[name] = _build_section(
            name, cls, table=table, env=env, base=base, origin=origin
        )
    if raw:
        first = sorted(raw)[0]
        raise ConfigError(
            f"{first!r} in {origin}",
            f"unknown section; known sections: {', '.join(_SECTIONS)}",
        )
    _warn_unknown_env(env)
    config = ServerConfig(**sections)
    config.validate()
    return config


def demo_config(port: int, results_root: Path) -> ServerConfig:
    """Build the loopback-only demo configuration with the demo plate on.

    Commands bind ``port`` and events ``port + 1``; ``port=0`` lets the operating
    system pick both (read the real ones from the sockets' ``last_endpoint``).

    Raises
    ------
    ConfigError
        When ``port`` is outside 0-65534.
    """
    if not 0 <= port <= 65534:
        raise ConfigError("demo port", f"must be 0-65534, got {port}")
    event_port = port + 1 if port else 0
    config = ServerConfig(
        server=ServerSection(
            command_address=f"tcp://127.0.0.1:{port}",
            event_address=f"tcp://127.0.0.1:{event_port}",
        ),
        plates=PlatesSection(demo=True),
        results=ResultsSection(root=results_root),
    )
    config.validate()
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.expanduser().open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None


def _build_section(
    name: str,
    cls: type,
    *,
    table: dict[str, Any],
    env: Mapping[str, str],
    base: Path,
    origin: str,
) -> Any:
    hints = get_type_hints(cls)
    unknown = sorted(set(table) - set(hints))
    if unknown:
        raise ConfigError(
            f"[{name}] {unknown[0]} in {origin}",
            f"unknown key; known keys: {', '.join(hints)}",
        )
    values: dict[str, Any] = {
        key: _from_toml(hints[key], value, f"[{name}] {key} in {origin}", base)
        for key, value in table.items()
    }
    for key, hint in hints.items():
        var = env_name(name, key)
        if var in env:
            values[key] = _from_env(hint, env[var], var)
    if name == "execution" and "workers" not in values and values.get("gpus"):
        values["workers"] = len(values["gpus"])
    return cls(**values)


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    known = {
        env_name(name, key)
        for name, cls in _SECTIONS.items()
        for key in get_type_hints(cls)
    }
    prefixes = tuple(f"{ENV_PREFIX}{name.upper()}_" for name in _SECTIONS)
    for var in sorted(env):
        if var.startswith(prefixes) and var not in known:
            log.warning("ignoring %s: no such server setting (typo?)", var)


# --- typed conversion --------------------------------------------------------------

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _as_path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return Path(os.path.normpath(base / path))


def _from_toml(hint: Any, value: Any, where: str, base: Path) -> Any:
    if hint in (Path | None, str | None) and value == "":
        return None
    if hint in (Path | None, str | None):
        hint = Path if hint == Path | None else str
    if hint in (tuple[Path, ...], tuple[int, ...]):
        if not isinstance(value, list):
            raise ConfigError(where, f"expected a list, got {type(value).__name__}")
        inner = Path if hint == tuple[Path, ...] else int
        return tuple(
            _from_toml(inner, item, f"{where}[{index}]", base)
            for index, item in enumerate(value)
        )
    checks: dict[Any, tuple[Callable[[Any], bool], str]] = {
        bool: (lambda v: isinstance(v, bool), "true or false"),
        int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
        float: (
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "a number",
        ),
        str: (lambda v: isinstance(v, str), "a string"),
        Path: (lambda v: isinstance(v, str), "a path string"),
    }
    accepts, expected = checks[hint]
    if not accepts(value):
        raise ConfigError(where, f"expected {expected}, got {value!r}")
    if hint is Path:
        return _as_path(value, base)
    return float(value) if hint is float else value


def _from_env(hint: Any, text: str, var: str) -> Any:
    stripped = text.strip()
    if hint in (Path | None, str | None):
        if not stripped:
            return None
        hint = Path if hint == Path | None else str
    if hint in (tuple[Path, ...], tuple[int, ...]):
        inner = Path if hint == tuple[Path, ...] else int
        items = [item.strip() for item in stripped.split(",") if item.strip()]
        return tuple(_from_env(inner, item, var) for item in items)
    if hint is bool:
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ConfigError(var, f"expected a boolean (true/false, 1/0), got {text!r}")
    if hint in (int, float):
        try:
            return hint(stripped)
        except ValueError:
            kind = "an integer" if hint is int else "a number"
            raise ConfigError(var, f"expected {kind}, got {text!r}") from None
    if hint is Path:
        return _as_path(stripped, Path.cwd())
    return text
