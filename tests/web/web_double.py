"""The logged-in OMERO.web user, as the plugin's views receive it, for tests.

``login_required`` normally builds a ``BlitzGateway`` from the Django
session. Tests replace its two hooks that talk to OMERO
(``get_connection``, ``load_server_settings``) with ones answered by the
OMERO double in ``tests/omero/``: a :class:`WebConn` holds real
``omero.model`` objects and a session key of the fixture. Which user is
logged in is the ``omero_double_user`` cookie (a test's choice; the
production view never sees it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omero_double import DoubleFactory, DoubleGateway
from omero_fixture import ALICE, BOB, EXPIRED

COOKIE = "omero_double_user"
SESSIONS = {"bob": BOB, "alice": ALICE, "expired": EXPIRED}


class _Client:
    """The part of ``omero.client`` the plugin reads: the session id."""

    def __init__(self, gateway: DoubleGateway) -> None:
        self._gateway = gateway

    def getSessionId(self) -> str:
        return str(self._gateway.key)


class WebConn(DoubleGateway):
    """A BlitzGateway-like connection of one user, as ``login_required`` gives."""

    @property
    def c(self) -> _Client | None:
        return _Client(self) if self.key is not None else None


def conn_for(description: Path, user: str) -> WebConn | None:
    """``user``'s connection, or None (not logged in) for an unknown name."""
    key = SESSIONS.get(user)
    if key is None:
        return None
    factory = DoubleFactory(description)
    conn = WebConn(factory.server, "double", 4064)
    conn.key = key  # joined as an OMERO.web login would (even if expired since)
    return conn


@contextlib.contextmanager
def logged_in(description: Path) -> Iterator[None]:
    """Patch ``login_required`` so the cookie's user is logged in."""
    from omeroweb.decorators import login_required

    def get_connection(_self: Any, _server_id: Any, request: Any) -> WebConn | None:
        return conn_for(description, request.COOKIES.get(COOKIE, ""))

    def load_server_settings(_self: Any, _conn: Any, _request: Any) -> None:
        return None

    saved = login_required.get_connection, login_required.load_server_settings
    login_required.get_connection = get_connection
    login_required.load_server_settings = load_server_settings
    try:
        yield
    finally:
        login_required.get_connection, login_required.load_server_settings = saved
