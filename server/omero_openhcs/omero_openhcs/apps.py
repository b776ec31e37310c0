"""The Django app config: it owns the cache of execution-server connections."""

from __future__ import annotations

from django.apps import AppConfig

from omero_openhcs.connections import ConnectionPool


class OpenHCSAppConfig(AppConfig):
    """``omero_openhcs``; ``pool`` holds one client connection per OMERO session."""

    name = "omero_openhcs"
    label = "openhcs"  # OMERO.web mounts an app's URLs at /<label>/
    verbose_name = "openhcs-nb"

    def ready(self) -> None:
        """Build the connection cache from the settings (once per process)."""
        self.pool = ConnectionPool.from_settings()
