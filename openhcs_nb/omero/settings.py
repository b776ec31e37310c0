"""The OMERO settings every part of the integration reads, in one frozen value.

The server's ``[omero]`` section (:class:`openhcs_nb.server.config.OmeroSection`)
is converted by :func:`omero_settings`: fields it has are taken, the others keep
their defaults here, so the server section can grow without this module
changing. Without a server config (a notebook on the OMERO host), the
``OMERO_HOST``, ``OMERO_PORT``, ``OMERO_DATA_DIR`` and ``OMERO_MANAGED_DIR``
environment variables are read instead.

The settings are hashable and picklable: worker processes receive them inside
the plate handle (see :mod:`openhcs_nb.plates.omero`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

PIXEL_PATHS: tuple[str, ...] = ("original", "romio", "ice")
LABEL_MODES: tuple[str, ...] = ("rois", "none")


@dataclass(frozen=True)
class OmeroSettings:
    """Where OMERO is, where its files are, and how results go back.

    ``pixel_paths`` lists the pixel paths allowed, fastest first; leaving out
    ``"ice"`` makes a plate whose files are not readable fail instead of
    falling back to the (slow) network path. ``labels`` is ``"rois"`` (one
    mask ROI per object on each field's image) or ``"none"``. ``replace``
    deletes the openhcs-nb outputs of earlier runs of the *same* pipeline on
    the plate once the new ones are written.

    Nothing here chooses the gateway implementation: tests inject a double
    through the ``factory`` parameters, never through configuration.
    """

    host: str = "localhost"
    port: int = 4064
    data_dir: Path | None = None
    managed_dir: Path | None = None
    pixel_paths: tuple[str, ...] = PIXEL_PATHS
    labels: str = "rois"
    object_table: bool = True
    replace: bool = True
    max_rois_per_image: int = 5000
    keepalive_s: float = 60.0
    writeback_attempts: int = 3
    retry_delay_s: float = 2.0

    def __post_init__(self) -> None:
        unknown = [p for p in self.pixel_paths if p not in PIXEL_PATHS]
        if unknown or not self.pixel_paths:
            raise ValueError(
                f"omero pixel_paths must be a non-empty subset of {PIXEL_PATHS}, "
                f"got {self.pixel_paths}"
            )
        if self.labels not in LABEL_MODES:
            raise ValueError(f"omero labels must be one of {LABEL_MODES}")
        if self.managed_dir is None and self.data_dir is not None:
            # OMERO's default: omero.managed.dir = ${omero.data.dir}/ManagedRepository
            object.__setattr__(self, "managed_dir", self.data_dir / "ManagedRepository")

    @property
    def where(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"


def omero_settings(
    config: Any = None, env: Mapping[str, str] = os.environ
) -> OmeroSettings:
    """Settings from a server config, its ``[omero]`` section, or the environment.

    Raises
    ------
    ValueError
        A value is out of range (unknown pixel path, labels mode).
    """
    if isinstance(config, OmeroSettings):
        return config
    if config is None:
        return _from_env(env)
    section = getattr(config, "omero", config)
    known = {f.name for f in fields(OmeroSettings)}
    values = {
        name: getattr(section, name)
        for name in known
        if getattr(section, name, None) is not None
    }
    paths = values.get("pixel_paths")
    if isinstance(paths, str):  # the server config writes "original,romio,ice"
        values["pixel_paths"] = tuple(p.strip() for p in paths.split(",") if p.strip())
    elif paths is not None:
        values["pixel_paths"] = tuple(paths)
    return OmeroSettings(**values)


def _from_env(env: Mapping[str, str]) -> OmeroSettings:
    settings = OmeroSettings(host=env.get("OMERO_HOST", "localhost"))
    if env.get("OMERO_PORT"):
        settings = replace(settings, port=int(env["OMERO_PORT"]))
    data = env.get("OMERO_DATA_DIR")
    managed = env.get("OMERO_MANAGED_DIR")
    return replace(
        settings,
        data_dir=Path(data) if data else None,
        managed_dir=Path(managed) if managed else None,
    )
