"""Settings an admin runs the server by: metrics, retention and log format.

Kept apart from :mod:`openhcs_nb.server._config_sections` (what the server
does) because these say how it is operated; both are collected by
:class:`openhcs_nb.server.config.ServerConfig`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from openhcs_nb.server._config_sections import _m, _Section


class MetricsSection(_Section):
    """A Prometheus endpoint on its own port; off while ``port`` is 0."""

    port: Annotated[int, _m("Prometheus port; 0 = off", ge=0, le=65535)] = 0
    address: Annotated[str, _m("address the endpoint binds (loopback)")] = "127.0.0.1"
    store_size_interval_s: Annotated[
        float, _m("seconds between measurements of the results folder", gt=0)
    ] = 60.0


class RetentionSection(_Section):
    """Finished runs older or beyond a size are pruned; 0 turns a rule off."""

    max_age_days: Annotated[float, _m("prune runs finished this long ago", ge=0)] = 0.0
    max_total_gib: Annotated[
        float, _m("prune the oldest runs while results exceed this", ge=0)
    ] = 0.0
    interval_s: Annotated[float, _m("seconds between automatic prunes", gt=0)] = 3600.0


class LoggingSection(_Section):
    """``text`` for people at a terminal, ``json`` (an object a line) for collectors."""

    format: Annotated[Literal["text", "json"], _m("log line format")] = "text"
    level: Annotated[str, _m("log level name (INFO, DEBUG, ...)")] = "INFO"
