"""Django test clients of one logged-in user, and runs started for them.

Runs are started through the plugin's own cached connection of the user's
OMERO session (``pool.get(session)``): the same key and session the web
pages act with, so the execution server sees them as that user's.
"""

from __future__ import annotations

from typing import Any

import pytest
from web_double import COOKIE, SESSIONS


def client_of(user: str, *, csrf: bool = False) -> Any:
    """A Django test client logged in as ``user`` (``csrf``: enforce tokens)."""
    from django.test import Client

    client = Client(enforce_csrf_checks=csrf)
    client.cookies[COOKIE] = user
    return client


def run_for(pool: Any, user: str, pipeline: Any, plate: str, **options: Any) -> Any:
    """Submit ``pipeline`` as ``user`` through the plugin's connection; the handle."""
    connection = pool.get(SESSIONS[user])
    return connection.submit(pipeline, plate, **options)


def csrf_token(client: Any, page: str) -> str:
    """The CSRF token Django set while rendering ``page`` (a form page)."""
    reply = client.get(page)
    assert reply.status_code == 200, reply.content[:500]
    return (
        reply.cookies["csrftoken"].value
        if "csrftoken" in reply.cookies
        else (client.cookies["csrftoken"].value)
    )


def one_line(reply: Any) -> str:
    """The refusal line a page shows (``role="alert"``), or a JSON ``error``."""
    if reply["Content-Type"].startswith("application/json"):
        return reply.json()["error"]
    text = reply.content.decode()
    start = text.index('role="alert">') + len('role="alert">')
    return text[start : text.index("</p>", start)].strip()


def _has_presets() -> bool:
    from openhcs_nb.client import Connection

    return callable(getattr(Connection, "presets", None))


#: Tests that need the execution server's presets (issue 11, server side).
needs_presets = pytest.mark.skipif(
    not _has_presets(),
    reason="this openhcs_nb has no Connection.presets yet (issue 11, server side)",
)
