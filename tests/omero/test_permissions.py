"""Refusals: bad sessions, plates the user may not see, plates that do not
exist -- each with a clear message, and no byte read from the repository."""

from __future__ import annotations

import pytest
from omero_double import factory_for
from omero_fixture import ALICE, BOB, EXPIRED
from omero_opens import recording_opens

from openhcs_nb.errors import UnknownPlateError
from openhcs_nb.omero.errors import NotAuthorizedError, SessionInvalidError
from openhcs_nb.plates.omero import open_omero_plate


@pytest.mark.parametrize("key", [EXPIRED, "no-such-session-key", "   "])
def test_when_session_key_is_expired_or_unknown_then_join_is_refused(join, key):
    with pytest.raises(SessionInvalidError) as caught:
        join(key)
    assert caught.value.code == "session_invalid"
    assert "log in again" in str(caught.value) or "no OMERO session key" in str(
        caught.value
    )
    assert key.strip() == "" or key not in str(caught.value)  # never echo a key


def test_when_user_cannot_see_plate_then_not_authorized_and_nothing_is_read(
    bob, repo_root
):
    with recording_opens() as opened, pytest.raises(NotAuthorizedError) as caught:
        open_omero_plate("omero:105", session=bob)
    assert caught.value.code == "not_authorized"
    assert "'bob' may not read plate 105" in str(caught.value)
    touched = [p for p in opened if p.startswith(str(repo_root))]
    assert touched == []


def test_when_owner_opens_the_same_plate_then_its_files_are_read(join, repo_root):
    alice = join(ALICE)
    with recording_opens() as opened:
        plate = open_omero_plate("omero:105", session=alice)
        plate.read_image("A01", 0, 0)
    assert plate.pixel_path("A01", 0) == "original"
    assert any("private.ome.tiff" in p for p in opened)


def test_when_plate_does_not_exist_then_unknown_plate(bob):
    with pytest.raises(UnknownPlateError, match="no OMERO plate with id 424242"):
        open_omero_plate("omero:424242", session=bob)


def test_when_session_expires_mid_run_then_ice_reads_fail_but_files_do_not(bob, server):
    plate = open_omero_plate("omero:103", session=bob)
    server.expire(BOB)
    assert plate.read_image("A01", 0, 0).shape == (64, 64)  # ROMIO: no OMERO call
    with pytest.raises(SessionInvalidError, match="no longer valid"):
        plate.read_image("A02", 0, 0)  # Ice


def test_when_plate_opens_its_own_session_then_it_leaves_it_softly(
    server, settings, monkeypatch
):
    monkeypatch.setenv("OMERO_SESSION_KEY", BOB)
    plate = open_omero_plate("omero:101", config=settings, factory=factory_for(server))
    assert plate.session.gateway.server is server
    before = list(server.closes)
    plate.close()
    assert server.closes[len(before) :] == [False]  # close(hard=False), never hard


def test_when_no_session_key_anywhere_then_refused_with_how_to(settings, monkeypatch):
    monkeypatch.delenv("OMERO_SESSION_KEY", raising=False)
    with pytest.raises(SessionInvalidError, match="set OMERO_SESSION_KEY"):
        open_omero_plate("omero:101", config=settings)
