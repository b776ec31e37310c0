"""Settings an admin sets with ``omero config set omero.web.openhcs.<name>``.

OMERO.web imports this module for every app in ``omero.web.apps`` and maps
each ``CUSTOM_SETTINGS_MAPPINGS`` entry onto a module attribute, so the plugin
is configured like the rest of OMERO.web and never reads files of its own.
``omeroweb.settings`` sets the upper-case names below as attributes of this
module (``process_custom_settings``); :func:`plugin_settings` reads them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


def _text(value: str) -> str:
    return str(value).strip()


CUSTOM_SETTINGS_MAPPINGS = {
    "omero.web.openhcs.server": [
        "OPENHCS_SERVER",
        "",
        _text,
        "Command address of the openhcs execution server, e.g. tcp://omero-host:7171.",
    ],
    "omero.web.openhcs.server_key": [
        "OPENHCS_SERVER_KEY",
        "",
        _text,
        "The execution server's CurveZMQ public key: Z85 text or a .key file path.",
    ],
    "omero.web.openhcs.client_key": [
        "OPENHCS_CLIENT_KEY",
        "",
        _text,
        "Path to this plugin's secret key file (<name>.key_secret; <name>.key "
        "beside it), listed under [web] frontends in the server's server.toml.",
    ],
    "omero.web.openhcs.timeout": [
        "OPENHCS_TIMEOUT",
        10.0,
        float,
        "Seconds one request to the execution server may take.",
    ],
    "omero.web.openhcs.max_connections": [
        "OPENHCS_MAX_CONNECTIONS",
        64,
        int,
        "Connections to the execution server kept open (one per OMERO session).",
    ],
    "omero.web.openhcs.idle_seconds": [
        "OPENHCS_IDLE_SECONDS",
        600.0,
        float,
        "A session's connection is closed after this many seconds unused.",
    ],
}


@dataclass(frozen=True)
class PluginSettings:
    """What the plugin needs to reach the execution server, read once at start."""

    server: str
    server_key: str
    client_key: str
    timeout: float = 10.0
    max_connections: int = 64
    idle_seconds: float = 600.0

    @property
    def client_keys(self) -> tuple[Path, Path] | None:
        """``(public, secret)`` key files, or None when no key is configured."""
        if not self.client_key:
            return None
        secret = Path(self.client_key)
        return Path(str(secret).removesuffix("_secret")), secret


def plugin_settings() -> PluginSettings:
    """The settings OMERO.web mapped onto this module (defaults when unset)."""
    module = sys.modules[__name__]

    def read(key: str) -> object:
        name, default = CUSTOM_SETTINGS_MAPPINGS[key][:2]
        return getattr(module, name, default)

    return PluginSettings(
        server=str(read("omero.web.openhcs.server")),
        server_key=str(read("omero.web.openhcs.server_key")),
        client_key=str(read("omero.web.openhcs.client_key")),
        timeout=float(read("omero.web.openhcs.timeout")),
        max_connections=int(read("omero.web.openhcs.max_connections")),
        idle_seconds=float(read("omero.web.openhcs.idle_seconds")),
    )
