"""The server's side of OMERO: who each client is, their plates, write-back.

A client proves which OMERO user it acts as by sending an OMERO session key in
``Hello``; the server joins that session (never killing it: sessions are left
with ``close(hard=False)``) and from then on reads plates and writes results *as
that user*. The key lives on that connection's state only (never stored, never
shared with another connection or key user), so after a restart the client says
Hello again (it does so by itself when it gets ``session_invalid``). Plates are
opened per (session, plate), never shared between users, and the permission
check happens before any byte is read.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from openhcs_nb.omero.errors import SessionInvalidError
from openhcs_nb.omero.pool import SessionPool
from openhcs_nb.plates.model import Plate
from openhcs_nb.plates.omero import open_omero_plate, parse_ref

log = logging.getLogger(__name__)


def is_omero_ref(ref: str) -> bool:
    """Whether ``ref`` names an OMERO plate (``omero:<id>``)."""
    return ref.startswith("omero:")


class OmeroAccess:
    """Joined sessions (by key) and the plates opened through them.

    It never decides *who* a connection is: the server keeps the key a
    connection presented on that connection's own state (see
    :mod:`openhcs_nb.server.peers`) and passes it in with every call.
    """

    def __init__(self, config: Any, *, gateway: Any = None):
        self.config = config
        self.gateway = gateway
        self.pool = SessionPool(config, gateway=gateway)
        self._plates: dict[tuple[str, str], Plate] = {}
        self._lock = threading.Lock()

    def hello(self, key: str) -> str:
        """Join ``key``; returns the OMERO user name it belongs to.

        Raises
        ------
        SessionInvalidError
            The key is unknown or expired.
        """
        session = self.pool.join(key)
        log.info("a connection joined the OMERO session of %s", session.user_name)
        return session.user_name

    @staticmethod
    def require(key: str | None) -> str:
        """The connection's session key, or the one-line reason it has none.

        Raises
        ------
        SessionInvalidError
            The connection sent no key (or the server restarted since).
        """
        if not key:
            raise SessionInvalidError(
                "OMERO plates need an OMERO session: connect with "
                "omero_session=<key> (or set OMERO_SESSION_KEY)"
            )
        return key

    def open(self, ref: str, key: str | None) -> Plate:
        """Open an OMERO plate as the session's user (checked before reading).

        Raises
        ------
        SessionInvalidError, NotAuthorizedError, UnknownPlateError, PlateError
        """
        parse_ref(ref)
        key = self.require(key)
        session = self.pool.join(key)
        with self._lock:
            plate = self._plates.get((key, ref))
        if plate is None:
            plate = open_omero_plate(ref, session=session, config=self.config)
            with self._lock:
                self._plates[(key, ref)] = plate
        return plate

    def hold(self, key: str | None, execution_id: str) -> str:
        """Keep the session alive for an execution; returns its user."""
        session = self.pool.hold(self.require(key), execution_id)
        return session.user_name

    def write_back(self, execution_id: str, results_root: Path) -> str | None:
        """Write an execution's results to OMERO; returns an error text or None.

        Failures never lose results: they stay in the local store, and
        ``openhcs-server writeback <execution id>`` retries.
        """
        from openhcs_nb.omero.writeback import writeback_execution

        try:
            session = self.pool.held(execution_id)
            if session is None:
                raise SessionInvalidError("the submitting user's session has ended")
            writeback_execution(
                execution_id, results_root, self.config, session=session
            )
        except Exception as exc:
            log.exception("execution %s: OMERO write-back failed", execution_id)
            return (
                f"OMERO write-back failed ({exc}); the results are kept locally, "
                f"retry with 'openhcs-server writeback {execution_id}'"
            )
        finally:
            self.pool.release(execution_id)
        return None

    def release(self, execution_id: str) -> None:
        """The execution no longer needs its session (cancelled, failed)."""
        self.pool.release(execution_id)

    def close(self) -> None:
        """Leave every joined session softly."""
        self.pool.close_all()
