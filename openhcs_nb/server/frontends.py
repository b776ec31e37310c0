"""Web front ends: keys that act for OMERO users, and only with their live session.

A front end (the OMERO.web plugin) connects with its own CurveZMQ key, named in
``[web] frontends``. It serves many people, so its key alone is nobody: it may
act only as the OMERO user whose live session it presents in ``Hello``, which
the server joins with OMERO before accepting (the same join as a notebook's).

Rules:

- A front end's ``Hello`` must carry ``omero_session``; without OMERO enabled
  on the server, front-end keys are refused at ``Hello``. Every other command
  before a session is joined is refused with ``frontend_needs_session`` (and
  audited, as every refusal is). A new ``Hello`` forgets the session it had.
- Once joined as OMERO user ``U``, its commands run as the effective user
  ``omero:U`` (:func:`omero_owner`): executions it starts are owned, counted
  for quotas and scheduled fairly under that one name, whichever front-end
  connection sent them. Key names cannot contain ``:``, so no key user can
  be ``omero:U``.
- It may name OMERO plates only (``omero:<id>``): a plate under the server's
  plate roots is checked against no OMERO permission.
- It sees the executions whose OMERO user is ``U``, whichever key started them
  (U's notebook runs on OMERO plates too); anyone else's is unknown to it.
- The session is re-checked with OMERO every ``[web] session_check_s``
  seconds of a connection's commands; an expired one ends the acting.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.omero.errors import NotAuthorizedError, SessionInvalidError
from openhcs_nb.protocol import Hello
from openhcs_nb.server.omero_access import is_omero_ref
from openhcs_nb.server.peers import Peer

log = logging.getLogger(__name__)

#: Prefix of the effective user of an OMERO user acting through a front end.
OMERO_OWNER_PREFIX = "omero:"


class FrontendNeedsSessionError(OpenHCSError):
    """A front-end key sent a command without a live OMERO session joined.

    The connection survives: say ``Hello`` with the user's session key.
    """

    code = "frontend_needs_session"


def omero_owner(omero_user: str) -> str:
    """The effective user name of an OMERO user acting through a front end."""
    return f"{OMERO_OWNER_PREFIX}{omero_user}"


def is_acting(peer: Peer) -> bool:
    """Whether ``peer`` is a front end acting for an OMERO user (see ``acting``)."""
    return bool(peer.via)


class Frontends:
    """Which keys are front ends, and the peer each of their commands runs as.

    ``check_session(key)`` asks OMERO whether a joined session still lives
    (raising :class:`~openhcs_nb.omero.errors.SessionInvalidError`); None when
    the server has no OMERO, and then every front-end key is refused.
    """

    def __init__(
        self,
        names: Iterable[str],
        check_session: Callable[[str], Any] | None,
        *,
        recheck_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.names = frozenset(names)
        self._check = check_session
        self.recheck_s = recheck_s
        self._clock = clock
        if self.names and check_session is None:
            log.warning(
                "[web] frontends lists %s but [omero] is not enabled: "
                "front-end keys will be refused at Hello",
                ", ".join(sorted(self.names)),
            )

    def is_frontend(self, peer: Peer) -> bool:
        """Whether ``peer``'s authenticated key is a web front end."""
        return peer.user in self.names

    def hello(self, msg: Hello, peer: Peer) -> None:
        """Vet a front end's Hello on the loop, before any session is joined.

        Raises
        ------
        FrontendNeedsSessionError
            No session key in the Hello, or no OMERO on this server.
        """
        if not self.is_frontend(peer):
            return
        peer.omero_key = peer.omero_user = None  # a new Hello starts over
        if self._check is None:
            raise FrontendNeedsSessionError(
                f"{peer.user!r} is a web front-end key, but this server has no "
                "OMERO ([omero] enabled = false), so it cannot act for anyone"
            )
        if not msg.omero_session:
            raise FrontendNeedsSessionError(
                f"{peer.user!r} is a web front-end key: its Hello must carry the "
                "OMERO session of the user it acts for"
            )

    def join(self, work: Any, msg: Hello, peer: Peer) -> Any:
        """Join the Hello's session (on the compile pool), then resume more.

        For a front end, the runs it started for that OMERO user before a
        restart resume too (they wait under the OMERO user's owner name).
        """
        out = work.join_omero(msg, peer)
        if self.is_frontend(peer) and peer.omero_user is not None:
            peer.omero_checked = self._clock()
            work._resume_waiting(self.owner_copy(peer))
        return out

    @staticmethod
    def owner_copy(peer: Peer) -> Peer:
        """The copy of a joined front-end ``peer`` that acts as its OMERO user."""
        assert peer.omero_user is not None
        return dataclasses.replace(
            peer, user=omero_owner(peer.omero_user), via=peer.user
        )

    def acting(self, msg: Any, peer: Peer) -> Peer:
        """The peer ``msg`` runs as: ``peer`` itself, or the OMERO user it acts for.

        Raises
        ------
        FrontendNeedsSessionError
            A front end without a joined session, or whose session has ended.
        """
        if not self.is_frontend(peer) or isinstance(msg, Hello):
            return peer
        if peer.omero_user is None or peer.omero_key is None:
            raise FrontendNeedsSessionError(
                f"{peer.user!r} is a web front-end key: say Hello with the OMERO "
                "session of the user it acts for before anything else"
            )
        self._recheck(peer)
        plate = getattr(msg, "plate", None)
        if isinstance(plate, str) and not is_omero_ref(plate):
            raise NotAuthorizedError(
                f"{peer.user!r} is a web front-end key: it may use OMERO plates "
                f"(omero:<id>) only, not {plate[:80]!r}"
            )
        return self.owner_copy(peer)

    def _recheck(self, peer: Peer) -> None:
        now = self._clock()
        if self._check is None or now - peer.omero_checked < self.recheck_s:
            return
        try:
            self._check(peer.omero_key or "")
        except SessionInvalidError:
            user = peer.omero_user
            peer.omero_key = peer.omero_user = None
            raise FrontendNeedsSessionError(
                f"the OMERO session of {user} has ended: say Hello with a live "
                "session to act for them again"
            ) from None
        peer.omero_checked = now


def may_see(record: Any, peer: Peer) -> bool:
    """A front end acting for ``U`` sees the executions whose OMERO user is ``U``."""
    return record.omero_user is not None and record.omero_user == peer.omero_user
