"""OmeroAuthenticator on the OMERO double, with JupyterHub's own user records.

The authenticator gets the double's login factory through its
``gateway_factory`` trait, as a hub config sets it; the users are real
``jupyterhub.user.User`` objects on an in-memory hub database, so the auth
state goes through JupyterHub's own encryption.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest

pytest.importorskip("omero", reason="the omero extra (omero-py) is not installed")
pytest.importorskip("jupyterhub")

from jupyterhub import crypto, orm
from jupyterhub.user import User
from omero_double import LoginFactory, server_for
from omero_fixture import PASSWORDS, build_fixture
from tornado import web

from openhcs_nb.hub_omero import OmeroAuthenticator


@pytest.fixture(scope="module")
def description(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("omero-repo"))


@pytest.fixture
def authenticator(description):
    return OmeroAuthenticator(
        gateway_factory=LoginFactory(description),
        omero_host="double",
        enable_auth_state=True,
        allow_all=True,
    )


@pytest.fixture
def hub_user(monkeypatch):
    """A JupyterHub user whose auth state is encrypted with a fresh key."""
    keeper = crypto.CryptKeeper.instance()
    monkeypatch.setattr(keeper, "keys", [os.urandom(32)])
    db = orm.new_session_factory("sqlite:///:memory:")()
    record = orm.User(name="bob")
    db.add(record)
    db.commit()
    yield User(record, db=db)
    db.close()


def log_in(authenticator, username, password):
    data = {"username": username, "password": password}
    return asyncio.run(authenticator.get_authenticated_user(None, data))


def test_when_password_is_right_then_auth_state_holds_a_live_session(
    authenticator, description
):
    auth = log_in(authenticator, "bob", PASSWORDS["bob"])
    assert auth["name"] == "bob"
    state = auth["auth_state"]
    assert state["omero_user"] == "bob"
    assert (state["omero_host"], state["omero_port"]) == ("double", 4064)
    double = server_for(description)
    # the login connection was left softly and the session lives on
    assert double.closes[-1] is False
    assert double.session_user(state["omero_session"]) == "bob"


def test_when_logged_in_then_the_password_is_nowhere_in_what_is_kept(
    authenticator, hub_user
):
    auth = log_in(authenticator, "bob", PASSWORDS["bob"])
    assert PASSWORDS["bob"] not in json.dumps(auth)
    asyncio.run(hub_user.save_auth_state(auth["auth_state"]))
    stored = hub_user.orm_user.encrypted_auth_state
    assert PASSWORDS["bob"].encode() not in stored
    assert asyncio.run(hub_user.get_auth_state()) == auth["auth_state"]


@pytest.mark.parametrize(
    ("username", "password"),
    [("bob", "wrong"), ("bob", PASSWORDS["alice"]), ("nobody", "x"), ("bob", "")],
)
def test_when_omero_refuses_the_login_then_none(authenticator, username, password):
    assert log_in(authenticator, username, password) is None


def test_when_a_session_made_by_the_hub_is_joined_elsewhere_then_it_is_that_user(
    authenticator, description
):
    """Another process built from the same description (the execution server)."""
    from omero_double import DoubleServer

    key = log_in(authenticator, "alice", PASSWORDS["alice"])["auth_state"][
        "omero_session"
    ]
    assert DoubleServer(description).session_user(key) == "alice"


def test_when_session_expires_then_refresh_asks_for_a_new_login(
    authenticator, description, hub_user
):
    first = log_in(authenticator, "bob", PASSWORDS["bob"])["auth_state"]
    asyncio.run(hub_user.save_auth_state(first))
    assert asyncio.run(authenticator.refresh_user(hub_user)) is True
    server_for(description).expire(first["omero_session"])
    assert asyncio.run(authenticator.refresh_user(hub_user)) is False
    again = log_in(authenticator, "bob", PASSWORDS["bob"])["auth_state"]
    assert again["omero_session"] != first["omero_session"]
    asyncio.run(hub_user.save_auth_state(again))
    assert asyncio.run(authenticator.refresh_user(hub_user)) is True


def test_when_omero_is_unreachable_then_the_form_says_so():
    """omero-py's own BlitzGateway (the default factory) on a closed port."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    authenticator = OmeroAuthenticator(
        omero_host="127.0.0.1", omero_port=port, allow_all=True
    )
    with pytest.raises(web.HTTPError) as info:
        log_in(authenticator, "bob", PASSWORDS["bob"])
    assert info.value.status_code == 503
    assert f"cannot connect to OMERO at 127.0.0.1:{port}" in str(info.value)


def test_when_the_hub_has_no_session_for_a_user_then_refresh_asks_for_a_login(
    authenticator, hub_user
):
    assert asyncio.run(authenticator.refresh_user(hub_user)) is False


def test_when_a_gateway_is_closed_hard_then_its_session_ends(description):
    """The double kills on a hard close, so a login that did so would fail here."""
    double = server_for(description)
    gateway = LoginFactory(description)("bob", PASSWORDS["bob"])
    assert gateway.connect()
    key = gateway.key
    gateway.close(hard=True)
    assert double.session_user(key) is None


def test_when_auth_state_is_off_then_the_hub_refuses_to_start(description):
    authenticator = OmeroAuthenticator(gateway_factory=LoginFactory(description))
    with pytest.raises(ValueError, match="enable_auth_state"):
        authenticator.check_allow_config()
