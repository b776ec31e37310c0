"""OmeroAuthenticator against a real OMERO server (``pytest -m omero``).

Set ``OMERO_HOST``, ``OMERO_USER``, ``OMERO_PASSWORD`` (and ``OMERO_PORT``).
It logs in through omero-py's own BlitzGateway, the default factory, and
checks what the double cannot prove: the session outlives the login
connection, another connection can join it as that user, and a wrong
password is a plain refusal.
"""

from __future__ import annotations

import asyncio
import os

import pytest

pytestmark = pytest.mark.omero
_NEEDED = ("OMERO_HOST", "OMERO_USER", "OMERO_PASSWORD")
_MISSING = [name for name in _NEEDED if not os.environ.get(name)]


@pytest.fixture(scope="module")
def authenticator():
    if _MISSING:
        pytest.skip(f"needs a real OMERO server: set {', '.join(_MISSING)}")
    from openhcs_nb.hub_omero import OmeroAuthenticator

    return OmeroAuthenticator(
        omero_host=os.environ["OMERO_HOST"],
        omero_port=int(os.environ.get("OMERO_PORT", "4064")),
        allow_all=True,
        enable_auth_state=True,
    )


def test_when_logged_in_on_a_real_server_then_the_session_can_be_joined(
    authenticator,
):
    from openhcs_nb.omero.session import join_session

    user = os.environ["OMERO_USER"]
    data = {"username": user, "password": os.environ["OMERO_PASSWORD"]}
    auth = asyncio.run(authenticator.get_authenticated_user(None, data))
    state = auth["auth_state"]
    assert state["omero_user"] == user
    assert os.environ["OMERO_PASSWORD"] not in repr(auth)
    joined = join_session(
        state["omero_session"], authenticator.omero_host, authenticator.omero_port
    )
    try:
        assert joined.user_name == user
    finally:
        joined.close()
    assert authenticator._alive(state["omero_session"])


def test_when_password_is_wrong_on_a_real_server_then_none(authenticator):
    data = {"username": os.environ["OMERO_USER"], "password": "not the password"}
    assert asyncio.run(authenticator.get_authenticated_user(None, data)) is None
