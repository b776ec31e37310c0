"""From a request to the user's connection, and from a refusal to one line.

Rules:

- The user's OMERO session key comes from the ``conn`` OMERO.web's
  ``login_required`` built for this request; nothing the browser sends can
  choose whose session is used.
- Every refusal of the execution server reaches the page as its one-line
  message with a fitting HTTP status; a server traceback never does.
- A session the server refused, or a server that stopped answering, drops
  the cached connection so the next request starts afresh.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from omero_openhcs.connections import ConnectionPool
from openhcs_nb.client import errors

#: HTTP status of each refusal class (first match wins, in this order).
STATUS: tuple[tuple[type[errors.RemoteError], int], ...] = (
    (errors.RemoteSessionInvalid, 403),
    (errors.RemoteNotAuthorized, 403),
    (errors.RemoteUnknownExecution, 404),
    (errors.RemoteUnknownPlate, 404),
    (errors.RemoteBusy, 429),
    (errors.RemotePipelineCodeError, 400),
    (errors.RemotePipelineError, 400),
    (errors.RemoteCompileError, 400),
    (errors.RemoteUnknownWell, 400),
    (errors.ServerUnavailable, 503),
)
#: Wire codes with their own status (checked before the classes above).
CODE_STATUS: dict[str, int] = {
    "unknown_preset": 404,
    "preset_exists": 409,
    "frontend_needs_session": 403,
}
#: Refusals after which the cached connection is not worth keeping.
DROP = (errors.RemoteSessionInvalid, errors.ServerUnavailable)


def pool() -> ConnectionPool:
    """The app's connection cache (built in ``OpenHCSAppConfig.ready``)."""
    return apps.get_app_config("openhcs").pool


def session_key(conn: Any) -> str:
    """The OMERO session key of the logged-in user's BlitzGateway."""
    client = getattr(conn, "c", None)
    if client is not None:
        key = client.getSessionId()
        if key:
            return str(key)
    return str(conn._sessionUuid)


def connection_for(conn: Any) -> Any:
    """The logged-in user's execution-server connection (one per OMERO session)."""
    return pool().get(session_key(conn))


def status_of(exc: errors.RemoteError) -> int:
    """The HTTP status a refusal is shown with."""
    if exc.code in CODE_STATUS:
        return CODE_STATUS[exc.code]
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 502


def message_of(exc: BaseException) -> str:
    """The one line a user reads: the server's message, first line only."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def forget_if_dead(conn: Any, exc: errors.RemoteError) -> None:
    """Drop the cached connection after a refusal that spoils it."""
    if isinstance(exc, DROP):
        pool().discard(session_key(conn))


def refusal_page(
    request: HttpRequest, conn: Any, exc: errors.RemoteError, title: str
) -> HttpResponse:
    """An HTML page that says why, in one line, with the refusal's status."""
    forget_if_dead(conn, exc)
    context = {"title": title, "message": message_of(exc), "code": exc.code}
    return render(request, "omero_openhcs/refused.html", context, status=status_of(exc))


def refusal_json(conn: Any, exc: errors.RemoteError) -> JsonResponse:
    """The same refusal for the page's polling: ``{"error": line, "code": code}``."""
    forget_if_dead(conn, exc)
    body = {"error": message_of(exc), "code": exc.code}
    return JsonResponse(body, status=status_of(exc))
