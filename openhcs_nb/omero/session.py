"""OMERO identity: finding a session key on the client, joining it on the server.

Client side, a user never gives the execution server a password: they pass a
session *key*, found by :func:`find_session_key` (``OMERO_SESSION_KEY``, or the
token saved by ``omero_user_token``) or made once with :func:`login`, which
asks for the password and keeps only the key.

Server side, :func:`join_session` joins that key: every query, read and write
then happens as that user, with their groups and permissions. Joined sessions
are always left with ``close(hard=False)``, so the user's own session (their
notebook, OMERO.web) lives on; a long run keeps it alive with
:meth:`OmeroSession.keepalive`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from openhcs_nb.omero.errors import (
    OmeroUnavailableError,
    SessionInvalidError,
    translate_errors,
)
from openhcs_nb.omero.gateway import Gateway, GatewayFactory, blitz_gateway
from openhcs_nb.omero.settings import OmeroSettings, omero_settings

log = logging.getLogger(__name__)


@dataclass(eq=False)
class OmeroSession:
    """A joined OMERO session: the gateway plus who it belongs to."""

    gateway: Gateway
    key: str = field(repr=False)
    settings: OmeroSettings
    user_name: str
    user_id: int
    group_id: int
    group_name: str
    closed: bool = False
    #: what built ``gateway`` (None: omero-py's BlitzGateway); plate handles
    #: carry it so worker processes rejoin through the same implementation
    factory: GatewayFactory | None = field(default=None, repr=False)
    #: write-backs change the gateway's group context (``SERVICE_OPTS``), which
    #: is shared by the whole connection: one write-back at a time per session
    write_lock: threading.Lock = field(
        default_factory=threading.Lock, repr=False, compare=False
    )

    @property
    def where(self) -> str:
        """``host:port`` of the OMERO server."""
        return self.settings.where

    def check(self) -> None:
        """Refresh the session's idle timer and make sure it still exists.

        Raises
        ------
        SessionInvalidError
            The session expired, was killed, or this object was closed.
        """
        if self.closed:
            raise SessionInvalidError(f"OMERO session of {self.user_name} was closed")
        with translate_errors(f"keeping {self.user_name}'s session alive", self.where):
            alive = self.gateway.keepAlive()
        if not alive:
            raise SessionInvalidError(
                f"the OMERO session of {self.user_name} on {self.where} has expired; "
                "log in again and resubmit"
            )

    def keepalive(self, interval_s: float | None = None) -> KeepAlive:
        """A running keepalive thread; use as ``with session.keepalive(): ...``."""
        return KeepAlive(self, interval_s or self.settings.keepalive_s)

    def close(self) -> None:
        """Leave the session without ending it (``close(hard=False)``); idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self.gateway.close(hard=False)
        except Exception:  # closing must never mask the error being handled
            log.debug("closing the joined session failed", exc_info=True)

    def __enter__(self) -> OmeroSession:
        """Use as a context manager that closes (softly) on exit."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close softly."""
        self.close()


class KeepAlive:
    """Calls ``keepAlive`` every ``interval_s`` from a daemon thread until stopped.

    OMERO ends sessions idle for longer than ``omero.sessions.timeout`` (ten
    minutes by default); a run that reads only files makes no OMERO call for
    hours, so something must ping. ``expired`` turns True when a ping fails.
    """

    def __init__(self, session: OmeroSession, interval_s: float) -> None:
        self.session = session
        self.interval_s = interval_s
        self.expired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"omero-keepalive-{session.user_name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.session.check()
            except Exception as exc:
                log.warning("OMERO keepalive stopped: %s", exc)
                self.expired = True
                return

    def stop(self) -> None:
        """Stop pinging (the session itself stays open)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> KeepAlive:
        """Keep alive while the block runs."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the thread."""
        self.stop()


def join_session(
    key: str,
    host: str | None = None,
    port: int | None = None,
    *,
    config: Any = None,
    factory: GatewayFactory | None = None,
) -> OmeroSession:
    """Join the OMERO session ``key`` and learn its user and group.

    ``config`` is anything :func:`omero_settings` accepts; ``host``/``port``
    override it. ``factory`` builds the unconnected gateway (default: a real
    ``BlitzGateway``); tests pass a double here, nothing else can.

    Raises
    ------
    SessionInvalidError
        Empty, unknown or expired key.
    OmeroUnavailableError
        The server refused the connection.
    """
    settings = omero_settings(config)
    if host is not None or port is not None:
        from dataclasses import replace

        settings = replace(
            settings, host=host or settings.host, port=port or settings.port
        )
    if not key or not key.strip():
        raise SessionInvalidError("no OMERO session key was given")
    gateway = (factory or blitz_gateway)(settings.host, settings.port)
    try:
        with translate_errors("joining the OMERO session", settings.where):
            joined = gateway.connect(sUuid=key.strip())
    except OmeroUnavailableError:
        _quiet_close(gateway)
        raise
    except Exception as exc:
        _quiet_close(gateway)
        raise OmeroUnavailableError(
            f"cannot reach OMERO at {settings.where}: {type(exc).__name__}: {exc}"
        ) from exc
    if not joined:
        _quiet_close(gateway)
        raise SessionInvalidError(
            f"OMERO at {settings.where} did not accept the session key "
            f"{_redact(key)}: it is unknown or has expired; log in again"
        )
    try:
        with translate_errors("reading the session's user", settings.where):
            ctx = gateway.getEventContext()
    except BaseException:
        _quiet_close(gateway)
        raise
    return OmeroSession(
        gateway=gateway,
        key=key.strip(),
        settings=settings,
        user_name=str(ctx.userName),
        user_id=int(ctx.userId),
        group_id=int(ctx.groupId),
        group_name=str(ctx.groupName),
        factory=factory,
    )


def _quiet_close(gateway: Gateway) -> None:
    try:
        gateway.close(hard=False)
    except Exception:
        log.debug("closing a failed gateway failed", exc_info=True)


def _redact(key: str) -> str:
    """Enough of a key to recognise it in a log, not enough to use it."""
    key = key.strip()
    return f"{key[:4]}...({len(key)} chars)" if len(key) > 8 else "(short key)"


def find_session_key(env: Mapping[str, str] = os.environ) -> str | None:
    """The user's session key: ``OMERO_SESSION_KEY``, else ``omero_user_token``.

    ``omero_user_token`` (an optional package) stores ``key@host:port``; only
    the key part is returned.
    """
    key = env.get("OMERO_SESSION_KEY", "").strip()
    if key:
        return key
    try:
        import omero_user_token  # type: ignore[import-not-found]
    except ImportError:
        return None
    token = omero_user_token.get_token() or ""
    return token.split("@", 1)[0].strip() or None


def login(
    host: str,
    user: str,
    port: int = 4064,
    *,
    ask: Callable[[str], str] | None = None,
    factory: Callable[..., Any] | None = None,
) -> str:
    """Log in once, asking for the password, and return only the session key.

    The password is asked with ``getpass`` (or ``ask``), used once and dropped;
    the session is detached (``close(hard=False)``) so it lives on for the
    server to join.

    Raises
    ------
    SessionInvalidError
        The user name or password was refused.
    """
    import getpass

    password = (ask or getpass.getpass)(f"OMERO password for {user}@{host}: ")
    if factory is None:
        from omero.gateway import BlitzGateway

        factory = BlitzGateway
    gateway = factory(user, password, host=host, port=port, secure=True)
    del password
    where = f"{host}:{port}"
    with translate_errors("logging in", where):
        if not gateway.connect():
            raise SessionInvalidError(f"OMERO at {where} refused the login of {user}")
        key = str(gateway.getEventContext().sessionUuid)
    gateway.close(hard=False)
    return key
