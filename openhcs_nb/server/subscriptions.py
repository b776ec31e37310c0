"""Who may receive an execution's events: authorised per subscriber.

The event socket is an XPUB in manual mode, so libzmq hands every subscription
request to the server instead of acting on it. A request is admitted only when
it names exactly one execution's topic, ``<id>/<stream key>/``, the stream key
is that execution's (a random capability the owner receives in its replies),
and the subscriber's CurveZMQ user (the ``User-Id`` of the request) owns the
execution. Everything else is refused and audited, above all ``b""``, which
would otherwise subscribe to every user's events. A refused request leaves the
subscriber with no subscription at all; a stale or guessed key is worthless
without the owner's key, and the owner's key is worthless without the stream key
of an OMERO execution it cannot see.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from openhcs_nb.protocol import ProtocolError, parse_topic
from openhcs_nb.server.jobs import JobStore

Action = Literal["subscribe", "unsubscribe"]


@dataclass(frozen=True)
class SubscriptionDecision:
    """What to do with one subscription request."""

    action: Action
    topic: bytes
    allowed: bool
    execution_id: str | None
    reason: str


def decide(
    request: bytes,
    user: str | None,
    store: JobStore,
    *,
    curve: bool,
    frontends: frozenset[str] = frozenset(),
) -> SubscriptionDecision:
    """Judge one XPUB request (a 1 byte + topic subscribes, a 0 byte unsubscribes).

    ``user`` is the request's authenticated user; ``curve`` says whether the
    server authenticates users at all (without CurveZMQ there is one local
    principal and the stream key alone decides). A web front end (a user in
    ``frontends``) acts for many OMERO users on one key, so it may follow an
    OMERO execution whose stream key it holds: it only learns that key by
    acting, with that user's live session, as the execution's OMERO user.
    """
    if not request or request[0] not in (0, 1):
        return SubscriptionDecision("subscribe", b"", False, None, "not a request")
    action: Action = "subscribe" if request[0] == 1 else "unsubscribe"
    topic = bytes(request[1:])
    if action == "unsubscribe":  # dropping a subscription never needs rights
        return SubscriptionDecision(action, topic, True, None, "unsubscribe")
    if not topic:
        return SubscriptionDecision(
            action, topic, False, None, "subscribing to every topic is not allowed"
        )
    try:
        execution_id, key = parse_topic(topic)
    except ProtocolError:
        return SubscriptionDecision(action, topic, False, None, "not an event topic")
    record = store.get_execution(execution_id)
    if record is None or not key or not hmac.compare_digest(record.stream_key, key):
        return SubscriptionDecision(
            action, topic, False, execution_id, "unknown execution or stream key"
        )
    if curve and record.user != user:
        if user in frontends and record.omero_user is not None:
            return SubscriptionDecision(
                action, topic, True, execution_id, "front end of its OMERO user"
            )
        return SubscriptionDecision(
            action, topic, False, execution_id, f"{user!r} does not own it"
        )
    return SubscriptionDecision(action, topic, True, execution_id, "owner")
