"""Audit lines for every command that changes or reveals state.

Each line names the authenticated user, the connection (address and routing
id), the command, the outcome and the reason. A full disk must not turn an
audit write into a failed request, so writing never raises here; it is logged.
Floods are summarised: a user's rate-limit refusals are written at most once
a second, with the count of those not written.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from openhcs_nb.server.audit import AuditLog
from openhcs_nb.server.peers import Peer

log = logging.getLogger(__name__)


class AuditTrail:
    """The server's side of the audit log: who, where, what, outcome, why."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._flood: dict[str, tuple[float, int]] = {}

    def record(
        self,
        peer: Peer | None,
        action: str,
        outcome: str,
        *,
        user: str | None = None,
        **fields: Any,
    ) -> None:
        """Append one line; never raises (a failed write is logged)."""
        who = user if user is not None else (peer.user if peer else "unknown")
        try:
            self.audit.record(
                user=who,
                action=action,
                outcome=outcome,
                peer=peer.label if peer is not None else None,
                omero_user=peer.omero_user if peer is not None else None,
                **fields,
            )
        except (OSError, ValueError) as exc:
            log.error(
                "audit line not written (%s %s %s): %s", who, action, outcome, exc
            )

    def rate_limited(self, peer: Peer, action: str) -> None:
        """Record a rate-limit refusal, summarising floods to one line a second."""
        now = time.monotonic()
        since, skipped = self._flood.get(peer.user, (0.0, 0))
        if now - since < 1.0:
            self._flood[peer.user] = (since, skipped + 1)
            return
        self._flood[peer.user] = (now, 0)
        detail = "over [limits] requests_per_second"
        if skipped:
            detail += f"; {skipped} more refusals in the last second"
        self.record(peer, action, "rate_limited", detail=detail)
