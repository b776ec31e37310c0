"""Server configuration: one TOML file, every key overridable from the environment.

Rules:

- The sections and keys are exactly the fields of the msgspec Structs below, each
  declared once with its type, bounds and description. The file is read with
  ``msgspec.convert``: an unknown section or key, a wrong type or a value out of
  bounds is an error that names its key path, so typos cannot pass silently.
- ``OPENHCS_NB_<SECTION>_<KEY>`` (upper case) overrides ``[section] key`` from the
  file, e.g. ``OPENHCS_NB_EXECUTION_WORKERS=4``. Environment text is converted to
  the field's type: integers, floats, booleans (``1/0, true/false, yes/no, on/off``),
  lists as comma-separated values, and paths. An empty value unsets an optional path.
- Relative paths in the file are relative to the file's folder; relative paths in
  the environment are relative to the working directory. ``~`` is expanded.
- :meth:`ServerConfig.validate` holds the cross-field rules, above all: binding to
  anything but loopback requires CurveZMQ keys. ``load_config`` always validates;
  :func:`check_config` lists every refusal at once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.server._config_ops import (
    LoggingSection,
    MetricsSection,
    RetentionSection,
)
from openhcs_nb.server._config_parse import (
    env_value,
    error_path,
    is_optional,
    lookup,
    path_hook,
    readable,
)
from openhcs_nb.server._config_sections import (
    AuditSection,
    ExecutionSection,
    LimitsSection,
    OmeroSection,
    PlatesSection,
    ResultsSection,
    SecuritySection,
    ServerSection,
    TrustSection,
    WebSection,
    _Section,
)
from openhcs_nb.server.addresses import (
    address_problem,
    is_loopback_address,
    split_tcp,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

__all__ = [
    "ENV_PREFIX",
    "AuditSection",
    "ConfigError",
    "ExecutionSection",
    "LimitsSection",
    "OmeroSection",
    "PlatesSection",
    "ResultsSection",
    "SecuritySection",
    "ServerConfig",
    "ServerSection",
    "TrustSection",
    "WebSection",
    "check_config",
    "demo_config",
    "env_name",
    "is_loopback_address",
    "load_config",
]

log = logging.getLogger(__name__)

ENV_PREFIX = "OPENHCS_NB_"


class ConfigError(OpenHCSError, ValueError):
    """A setting is missing, malformed or inconsistent; the server does not start."""

    code = "config_error"

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class ServerConfig(_Section):
    """The whole server configuration; build it with :func:`load_config`."""

    server: ServerSection = msgspec.field(default_factory=ServerSection)
    plates: PlatesSection = msgspec.field(default_factory=PlatesSection)
    results: ResultsSection = msgspec.field(default_factory=ResultsSection)
    execution: ExecutionSection = msgspec.field(default_factory=ExecutionSection)
    limits: LimitsSection = msgspec.field(default_factory=LimitsSection)
    security: SecuritySection = msgspec.field(default_factory=SecuritySection)
    omero: OmeroSection = msgspec.field(default_factory=OmeroSection)
    audit: AuditSection = msgspec.field(default_factory=AuditSection)
    metrics: MetricsSection = msgspec.field(default_factory=MetricsSection)
    retention: RetentionSection = msgspec.field(default_factory=RetentionSection)
    logging: LoggingSection = msgspec.field(default_factory=LoggingSection)
    web: WebSection = msgspec.field(default_factory=WebSection)
    trust: TrustSection = msgspec.field(default_factory=TrustSection)

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
        """Check bounds (code may build Structs that skip them) and cross-key rules.

        Raises
        ------
        ConfigError
            Naming the first offending key; the server must not start.
        """
        builtins = msgspec.to_builtins(self, enc_hook=str)
        try:
            msgspec.convert(builtins, ServerConfig, dec_hook=path_hook(Path.cwd()))
        except msgspec.ValidationError as exc:
            raise _refusal(exc, builtins, {}, origin=None) from None
        for key in ("command_address", "event_address"):
            problem = address_problem(getattr(self.server, key))
            if problem is not None:
                raise ConfigError(f"[server] {key}", problem)
        ephemeral = split_tcp(self.server.command_address)[1] in ("0", "*")
        if self.server.command_address == self.server.event_address and not ephemeral:
            raise ConfigError(
                "[server] event_address", "must differ from [server] command_address"
            )
        results = Path(self.results.root).expanduser().resolve()
        for index, root in enumerate(self.plates.roots):
            if results.is_relative_to(Path(root).expanduser().resolve()):
                raise ConfigError(
                    "[results] root",
                    f"is inside [plates] roots[{index}] ({root}): users could "
                    "read each other's results as plates",
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
        _check_executor(self.execution)
        if self.omero.enabled:
            from openhcs_nb.omero.settings import omero_settings

            try:
                omero_settings(self)
            except ValueError as exc:
                raise ConfigError("[omero]", str(exc)) from exc


def _check_executor(execution: ExecutionSection) -> None:
    """``executor = "dask"`` needs a scheduler address, and only an address."""
    address = execution.dask_scheduler
    if execution.executor == "dask" and not address:
        raise ConfigError(
            "[execution] dask_scheduler",
            'is required when [execution] executor = "dask" (tcp://HOST:PORT)',
        )
    if address and "://" not in address:
        raise ConfigError(
            "[execution] dask_scheduler",
            f"must be a scheduler address like tcp://HOST:PORT, got {address!r}",
        )


# section name -> {key -> msgspec type}, in file order; and -> section Struct
_SECTION_TYPES: dict[str, type[_Section]] = {
    field.name: field.type for field in msgspec.structs.fields(ServerConfig)
}
_SECTIONS: dict[str, dict[str, mi.Type]] = {
    section.name: {key.name: key.type for key in section.type.fields}
    for section in mi.type_info(ServerConfig).fields
}


def env_name(section: str, key: str) -> str:
    """Return the environment variable that overrides ``[section] key``."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def load_config(path: Path | None, env: Mapping[str, str] = os.environ) -> ServerConfig:
    """Read a TOML file (or only defaults when ``path`` is None), apply the environment.

    Raises
    ------
    ConfigError
        The file is missing or not TOML, a key is unknown, has the wrong type or is
        out of bounds, an environment value cannot be converted, or
        :meth:`ServerConfig.validate` fails. The message names the key or variable.
    """
    raw = _read_toml(path) if path is not None else {}
    origin = str(path) if path is not None else "defaults"
    sources, problems = _merge_env(raw, env)
    if problems:
        raise problems[0]
    _warn_unknown_env(env)
    config = _convert(raw, sources, path, origin)
    config.validate()
    return config


def check_config(path: Path, env: Mapping[str, str] = os.environ) -> list[str]:
    """Every refusal of ``path`` (and the environment), one ``"<key>: <reason>"`` each.

    Each key is converted on its own, so one pass reports every unknown key and
    every wrong or out-of-bounds value; the cross-field rules of
    :meth:`ServerConfig.validate` run only once those pass. An empty list means
    :func:`load_config` would accept the file.
    """
    try:
        raw = _read_toml(path)
    except ConfigError as exc:
        return [str(exc)]
    sources, env_problems = _merge_env(raw, env)
    lines = [str(problem) for problem in env_problems]
    hook = path_hook(path.expanduser().absolute().parent)
    for name, table in raw.items():
        if name not in _SECTIONS or not isinstance(table, dict):
            try:
                msgspec.convert({name: table}, ServerConfig)
            except msgspec.ValidationError as exc:
                lines.append(str(_refusal(exc, raw, sources, origin=None)))
            continue
        section = _SECTION_TYPES[name]
        for key, value in table.items():
            try:
                msgspec.convert({key: value}, section, dec_hook=hook)
            except msgspec.ValidationError as exc:
                error = _refusal(
                    exc, {name: {key: value}}, sources, origin=None, at=name
                )
                lines.append(str(error))
    if not lines:
        try:
            _convert(raw, sources, path, origin=None).validate()
        except ConfigError as exc:
            lines.append(str(exc))
    return lines


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
        # The demo binds only loopback and has no CurveZMQ: its one user is
        # the person who started it, trusted to run own functions (sandboxed).
        trust=TrustSection(users=(os.environ.get("OPENHCS_NB_LOCAL_USER", "local"),)),
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


def _merge_env(
    raw: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[tuple[str, str], str], list[ConfigError]]:
    """Put environment overrides into ``raw`` (in place) and blank paths to None.

    Returns which ``(section, key)`` came from which variable, and the variables
    whose text could not be converted.
    """
    sources: dict[tuple[str, str], str] = {}
    problems: list[ConfigError] = []
    for name, keys in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            continue  # msgspec names the section that is not a table
        for key, info in keys.items():
            var = env_name(name, key)
            if var in env:
                try:
                    table[key] = env_value(info, env[var])
                except ValueError as exc:
                    problems.append(ConfigError(var, str(exc)))
                    continue
                sources[name, key] = var
            elif table.get(key) == "" and is_optional(info):
                table[key] = None
        gpus = table.get("gpus") if name == "execution" else None
        if gpus and isinstance(gpus, list) and "workers" not in table:
            table["workers"] = len(gpus)
        if table:
            raw[name] = table
    return sources, problems


def _convert(
    raw: dict[str, Any],
    sources: dict[tuple[str, str], str],
    path: Path | None,
    origin: str | None,
) -> ServerConfig:
    base = path.expanduser().absolute().parent if path is not None else Path.cwd()
    try:
        return msgspec.convert(raw, ServerConfig, dec_hook=path_hook(base))
    except msgspec.ValidationError as exc:
        raise _refusal(exc, raw, sources, origin=origin) from None


def _refusal(
    error: msgspec.ValidationError,
    raw: Any,
    sources: dict[tuple[str, str], str],
    *,
    origin: str | None,
    at: str | None = None,
) -> ConfigError:
    """Turn msgspec's ``at `$.execution.workers``` into ``[execution] workers``."""
    parts, reason = error_path(error)
    if at is not None:
        parts.insert(0, at)
    suffix = f" in {origin}" if origin else ""
    if len(parts) < 2:
        name = str(parts[0]) if parts else ""
        if reason == "unknown":
            known = ", ".join(_SECTIONS)
            return ConfigError(f"{name!r}{suffix}", f"unknown section; known: {known}")
        return ConfigError(f"[{name}]{suffix}", readable(reason, lookup(raw, parts)))
    name, key, *rest = parts
    where = f"[{name}] {key}" + "".join(f"[{index}]" for index in rest)
    if (name, key) in sources:
        suffix = f" from {sources[str(name), str(key)]}"
    if reason == "unknown":
        known = ", ".join(_SECTIONS.get(str(name), {}))
        return ConfigError(f"{where}{suffix}", f"unknown key; known keys: {known}")
    return ConfigError(f"{where}{suffix}", readable(reason, lookup(raw, parts)))


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    known = {env_name(name, key) for name, keys in _SECTIONS.items() for key in keys}
    prefixes = tuple(f"{ENV_PREFIX}{name.upper()}_" for name in _SECTIONS)
    for var in sorted(env):
        if var.startswith(prefixes) and var not in known:
            log.warning("ignoring %s: no such server setting (typo?)", var)
