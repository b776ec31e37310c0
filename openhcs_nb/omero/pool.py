"""The execution server's joined sessions: one per key, kept alive while in use.

A server joins a user's key when they say Hello, opens their plates with it at
submit, and writes their results back with it when the run ends, possibly
hours later. :class:`SessionPool` joins each key once, hands the same
:class:`~openhcs_nb.omero.session.OmeroSession` to every request, and keeps it
alive while an execution *holds* it. Sessions nobody holds are left (softly)
after ``idle_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from openhcs_nb.omero.errors import SessionInvalidError
from openhcs_nb.omero.session import OmeroSession, join_session
from openhcs_nb.omero.settings import OmeroSettings, omero_settings

log = logging.getLogger(__name__)
Joiner = Callable[[str, OmeroSettings], OmeroSession]


class SessionPool:
    """Joined sessions by key, with holders and one keepalive thread."""

    def __init__(
        self,
        config: Any = None,
        *,
        idle_s: float = 600.0,
        joiner: Joiner | None = None,
        gateway: Any = None,
    ) -> None:
        self.settings = omero_settings(config)
        self.idle_s = idle_s
        self.gateway = gateway
        self._joiner = joiner or (
            lambda key, settings: join_session(key, config=settings, factory=gateway)
        )
        self._lock = threading.Lock()
        self._sessions: dict[str, OmeroSession] = {}
        self._used: dict[str, float] = {}
        self._holders: dict[str, str] = {}  # holder (execution id) -> key
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def join(self, key: str) -> OmeroSession:
        """The joined session for ``key`` (joined now, or reused and re-checked).

        Raises
        ------
        SessionInvalidError
            The key is unknown or expired.
        OmeroUnavailableError
            OMERO cannot be reached.
        """
        key = (key or "").strip()
        with self._lock:
            session = self._sessions.get(key)
        if session is not None:
            try:
                session.check()
            except SessionInvalidError:
                self._forget(key)
                raise
        else:
            session = self._joiner(key, self.settings)
            with self._lock:
                existing = self._sessions.setdefault(key, session)
            if existing is not session:
                session.close()
                session = existing
        with self._lock:
            self._used[key] = time.monotonic()
        return session

    def hold(self, key: str, holder: str) -> OmeroSession:
        """Join ``key`` and keep it alive until :meth:`release` of ``holder``.

        Raises
        ------
        SessionInvalidError, OmeroUnavailableError
            As :meth:`join`.
        """
        session = self.join(key)
        with self._lock:
            self._holders[holder] = key
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="omero-session-pool", daemon=True
                )
                self._thread.start()
        return session

    def held(self, holder: str) -> OmeroSession | None:
        """The session ``holder`` holds, if it still exists."""
        with self._lock:
            key = self._holders.get(holder)
            return self._sessions.get(key) if key is not None else None

    def release(self, holder: str) -> None:
        """``holder`` no longer needs its session; it may now idle out."""
        with self._lock:
            key = self._holders.pop(holder, None)
            if key is not None:
                self._used[key] = time.monotonic()

    def close_all(self) -> None:
        """Leave every session (softly) and stop the keepalive thread."""
        self._stop.set()
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._holders.clear()
        for session in sessions:
            session.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _forget(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(key, None)
            self._used.pop(key, None)
        if session is not None:
            session.close()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.keepalive_s):
            self.tick()

    def tick(self) -> None:
        """One keepalive round: ping held sessions, leave idle unheld ones."""
        now = time.monotonic()
        with self._lock:
            held = set(self._holders.values())
            items = list(self._sessions.items())
        for key, session in items:
            if key in held:
                try:
                    session.check()
                except Exception as exc:
                    log.warning("session of %s lost: %s", session.user_name, exc)
                    self._forget(key)
            elif now - self._used.get(key, now) > self.idle_s:
                self._forget(key)
