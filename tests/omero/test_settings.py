"""Settings from the server's [omero] section, or from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhcs_nb.omero.settings import OmeroSettings, omero_settings
from openhcs_nb.server.config import OmeroSection, ServerConfig


def test_when_server_config_is_given_then_its_omero_section_is_used():
    config = ServerConfig(
        omero=OmeroSection(
            enabled=True, host="omero.lab", port=4065, data_dir=Path("/OMERO")
        )
    )
    settings = omero_settings(config)
    assert (settings.host, settings.port) == ("omero.lab", 4065)
    assert settings.data_dir == Path("/OMERO")
    assert settings.managed_dir == Path("/OMERO/ManagedRepository")  # OMERO default
    assert settings.labels == "rois"


def test_when_managed_dir_is_set_then_it_wins():
    section = OmeroSection(data_dir=Path("/OMERO"), managed_dir=Path("/fs/managed"))
    assert omero_settings(section).managed_dir == Path("/fs/managed")


def test_when_section_lists_paths_as_text_then_they_are_split():
    from types import SimpleNamespace

    section = SimpleNamespace(host="h", pixel_paths="romio, ice", labels="none")
    settings = omero_settings(section)
    assert settings.pixel_paths == ("romio", "ice") and settings.labels == "none"


def test_when_no_config_then_environment_is_read():
    env = {"OMERO_HOST": "h", "OMERO_PORT": "4444", "OMERO_DATA_DIR": "/d"}
    settings = omero_settings(None, env)
    assert (settings.host, settings.port, settings.data_dir) == ("h", 4444, Path("/d"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pixel_paths", ("fast",), "pixel_paths"),
        ("pixel_paths", (), "pixel_paths"),
        ("labels", "images", "labels"),
    ],
)
def test_when_a_value_is_unknown_then_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        OmeroSettings(**{field: value})
