"""The test seam refuses anything that is not a test-double description."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
from omero_fixture import BOB

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.omero.session import join_session
from openhcs_nb.omero.settings import OmeroSettings


def test_when_settings_are_default_then_no_double_is_configured():
    assert OmeroSettings().test_double is None


def test_when_file_is_not_a_double_description_then_refused(tmp_path, settings):
    path = tmp_path / "server.json"
    path.write_text(json.dumps({"kind": "something-else", "double": "x.py"}))
    with pytest.raises(OpenHCSError, match="not a test-double description"):
        join_session(BOB, config=replace(settings, test_double=path))


def test_when_double_module_is_missing_then_refused(tmp_path, settings):
    path = tmp_path / "double.json"
    path.write_text(
        json.dumps({"kind": "openhcs-nb-omero-test-double", "double": "missing.py"})
    )
    with pytest.raises(OpenHCSError, match="no double module"):
        join_session(BOB, config=replace(settings, test_double=path))


def test_when_double_is_used_then_the_log_says_so(omero_repo, settings, caplog):
    with caplog.at_level(logging.WARNING, logger="openhcs_nb.omero._test_seam"):
        session = join_session(BOB, config=replace(settings, test_double=omero_repo))
    assert session.user_name == "bob"
    assert "OMERO TEST DOUBLE IN USE" in caplog.text
    session.close()
