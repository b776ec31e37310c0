"""The shipped code has no way to load a test double: tests inject one."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

import openhcs_nb
from openhcs_nb.omero import session as session_module
from openhcs_nb.omero.errors import SessionInvalidError
from openhcs_nb.omero.settings import OmeroSettings, omero_settings

PACKAGE = Path(openhcs_nb.__file__).parent


def test_when_settings_are_inspected_then_none_names_a_test_double():
    names = {f.name for f in dataclasses.fields(OmeroSettings)}
    assert "test_double" not in names
    section = {"host": "h", "test_double": "/tmp/double.json"}
    converted = omero_settings(type("Section", (), section)())
    assert not hasattr(converted, "test_double")  # an old key is simply ignored


def test_when_the_package_is_searched_then_the_seam_module_is_gone():
    assert importlib.util.find_spec("openhcs_nb.omero._test_seam") is None
    for folder in ("omero", "plates"):
        for path in (PACKAGE / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "test_double" not in text and "_test_seam" not in text, path


def test_when_no_factory_is_given_then_join_session_builds_a_blitz_gateway(
    monkeypatch,
):
    built: list[tuple[str, int]] = []

    class Refusing:
        def connect(self, sUuid=None):  # noqa: N803 - omero-py's name
            return False

        def close(self, hard=True):
            pass

    def fake_blitz(host: str, port: int) -> Refusing:
        built.append((host, port))
        return Refusing()

    monkeypatch.setattr(session_module, "blitz_gateway", fake_blitz)
    settings = OmeroSettings(host="omero.example", port=4064)
    with pytest.raises(SessionInvalidError, match="did not accept"):
        session_module.join_session("some-key-123456789", config=settings)
    assert built == [("omero.example", 4064)]
