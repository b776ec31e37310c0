"""The replies the loop makes on its own: busy, internal, rate limited.

A client never sees a server traceback. An unexpected failure is logged with
its traceback under a short random incident id, and the client is told only
that id, which an admin finds in the log.
"""

from __future__ import annotations

import logging
import secrets

from openhcs_nb.protocol import ErrorReply

log = logging.getLogger("openhcs_nb.server.incidents")


def log_incident(exc: BaseException, what: str) -> str:
    """Log ``exc`` with its traceback under a new incident id; returns the id."""
    incident = secrets.token_hex(4)
    log.error("incident %s: %s failed", incident, what, exc_info=exc)
    return incident


def internal_reply(rid: int | None, incident: str) -> ErrorReply:
    """What a client hears about a failure inside the server."""
    return ErrorReply(
        rid=rid,
        code="internal",
        message=f"internal server error (incident {incident}); "
        "the server's log has the details",
        details={"incident": incident},
    )


def busy_reply(rid: int | None, held: int, budget: int) -> ErrorReply:
    """The reply to a peer whose unread replies already fill its budget."""
    return ErrorReply(
        rid=rid,
        code="busy",
        message=f"{held / 2**20:.0f} MiB of earlier replies are still unread "
        f"([limits] peer_send_budget_bytes = {budget}); read them, then retry",
        details={"unread_bytes": held},
    )


def rate_limited_reply(
    rid: int | None, user: str, wait: float, rate: float
) -> ErrorReply:
    """The reply to a command over the user's rate limit."""
    return ErrorReply(
        rid=rid,
        code="rate_limited",
        message=f"user {user!r} sends more than {rate:g} commands per second "
        f"([limits] requests_per_second); retry in {wait:.2f} s",
        details={"retry_after": f"{wait:.3f}"},
    )
