"""Session keys, login, keepalive and the server's session pool."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from omero_double import DoubleGateway, factory_for
from omero_fixture import BOB

from openhcs_nb.omero.errors import OmeroUnavailableError, SessionInvalidError
from openhcs_nb.omero.pool import SessionPool
from openhcs_nb.omero.session import find_session_key, join_session, login


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_when_env_holds_a_key_then_it_is_found():
    assert find_session_key({"OMERO_SESSION_KEY": "  abc-123 \n"}) == "abc-123"
    assert find_session_key({}) is None  # omero_user_token is not installed here


def test_when_joined_then_user_and_group_come_from_the_session(bob):
    assert (bob.user_name, bob.user_id, bob.group_id, bob.group_name) == (
        "bob",
        2,
        3,
        "screening",
    )
    assert BOB not in repr(bob)


def test_when_logging_in_then_only_the_key_is_kept_and_it_can_be_joined(
    server, settings
):
    server.doc["passwords"] = {"bob": "s3cret"}
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "s3cret"

    def factory(user, password, host, port, secure):
        return DoubleGateway(server, host, port, user, password)

    key = login("double", "bob", ask=ask, factory=factory)
    assert asked == ["OMERO password for bob@double: "]
    assert "s3cret" not in key
    assert server.closes == [False]  # the login session is left, not killed
    session = join_session(key, config=settings, factory=factory_for(server))
    assert session.user_name == "bob"
    with pytest.raises(SessionInvalidError, match="refused the login"):
        login("double", "bob", ask=lambda _: "wrong", factory=factory)


def test_when_keepalive_runs_then_it_pings_and_notices_expiry(bob, server):
    keepalive = bob.keepalive(0.01)
    try:
        assert _wait_for(lambda: server.calls.count("keepAlive") >= 2)
        server.expire(BOB)
        assert _wait_for(lambda: keepalive.expired)
    finally:
        keepalive.stop()
    with pytest.raises(SessionInvalidError, match="has expired"):
        bob.check()


def test_when_pool_joins_a_key_twice_then_one_session_serves_both(server, settings):
    pool = SessionPool(
        settings,
        joiner=lambda k, s: join_session(k, config=s, factory=factory_for(server)),
    )
    first = pool.join(BOB)
    assert pool.join(BOB) is first
    assert server.calls.count("connect") == 1
    pool.close_all()
    assert server.closes == [False]


def test_when_held_session_is_released_and_idle_then_pool_leaves_it(server, settings):
    pool = SessionPool(
        replace(settings, keepalive_s=3600),
        idle_s=0.0,
        joiner=lambda k, s: join_session(k, config=s, factory=factory_for(server)),
    )
    held = pool.hold(BOB, "exec-1")
    assert pool.held("exec-1") is held
    pool.tick()
    assert server.calls.count("keepAlive") == 1 and not held.closed
    pool.release("exec-1")
    time.sleep(0.001)
    pool.tick()
    assert held.closed and server.closes == [False]
    pool.close_all()


def test_when_pooled_session_expired_then_join_refuses_and_forgets_it(server, settings):
    pool = SessionPool(
        settings,
        joiner=lambda k, s: join_session(k, config=s, factory=factory_for(server)),
    )
    pool.join(BOB)
    server.expire(BOB)
    with pytest.raises(SessionInvalidError):
        pool.join(BOB)
    with pytest.raises(SessionInvalidError, match="did not accept"):
        pool.join(BOB)  # re-joined from scratch, and refused
    pool.close_all()


def test_when_omero_is_unreachable_then_unavailable_not_session_invalid():
    # The real BlitzGateway, against a port nothing listens on.
    with pytest.raises(OmeroUnavailableError, match="cannot connect to OMERO"):
        join_session("some-key-1234567890", "127.0.0.1", 1)
