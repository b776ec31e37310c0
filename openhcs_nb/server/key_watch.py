"""CurveZMQ on the server's sockets: set-up, and live reload of ``authorized_keys``.

:func:`secure_sockets` turns encryption and the ZAP handler on at start-up.
``authorized_keys`` is reloaded on SIGHUP and whenever the file changes.

The ZAP handler admits new connections by the current key set; a reload
swaps the set in. Users whose keys disappeared are reported, so the server can
refuse their commands at once and close the connections they still have. A
file that does not parse keeps the old set (and says why): a typo must not
lock everyone out, nor let anyone new in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.server.keys import AuthorizedKeys, CurveAuthenticator

log = logging.getLogger(__name__)


def _stamp(path: Path) -> tuple[float, int, int] | None:
    try:
        if path.is_dir():
            stats = [p.stat() for p in sorted(path.iterdir()) if p.is_file()]
            newest = max((s.st_mtime for s in stats), default=0.0)
            return newest, len(stats), sum(s.st_size for s in stats)
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime, stat.st_ino, stat.st_size


class KeyWatcher:
    """Re-reads the authorized keys when asked or when the file changed."""

    def __init__(
        self,
        path: Path,
        authenticator: CurveAuthenticator,
        current: AuthorizedKeys,
        *,
        every_s: float = 1.0,
    ) -> None:
        self.path = path
        self.authenticator = authenticator
        self.current = current
        self.every_s = every_s
        self._stamp = _stamp(path)
        self._next = time.monotonic() + every_s

    @property
    def users(self) -> frozenset[str]:
        """The user names the current keys map to."""
        return frozenset(self.current.names.values())

    def poll(self, *, force: bool = False) -> set[str] | None:
        """Reload if forced or changed; returns the users removed (None: no reload)."""
        now = time.monotonic()
        if not force and now < self._next:
            return None
        self._next = now + self.every_s
        stamp = _stamp(self.path)
        if not force and stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            fresh = AuthorizedKeys.load(self.path, allow_empty=True)
        except OpenHCSError as exc:
            log.error("authorized keys not reloaded, keeping the old ones: %s", exc)
            return None
        removed = set(self.users) - set(fresh.names.values())
        self.current = fresh
        self.authenticator.update(fresh)
        log.info(
            "authorized keys reloaded: %d keys%s",
            len(fresh),
            f", removed users {sorted(removed)}" if removed else "",
        )
        return removed


def secure_sockets(
    ctx: Any, security: Any, sockets: Sequence[Any]
) -> tuple[CurveAuthenticator | None, KeyWatcher | None]:
    """Turn on CurveZMQ for ``sockets`` when ``[security]`` names a server key.

    Returns the running ZAP authenticator and the watcher of ``authorized_keys``
    (both None when the server runs without keys, on loopback).

    Raises
    ------
    OpenHCSError
        A server key is set but no ``authorized_keys``; the server must not start.
    """
    if security.server_secret_key is None:
        return None, None
    from openhcs_nb.server.keys import (
        configure_server_socket,
        load_keypair,
        start_authenticator,
    )

    keypair = load_keypair(security.server_secret_key)
    if security.authorized_keys is None:
        raise OpenHCSError("curve needs an authorized_keys file listing client keys")
    authorized = AuthorizedKeys.load(security.authorized_keys)
    auth = start_authenticator(ctx, authorized)
    watcher = KeyWatcher(security.authorized_keys, auth, authorized)
    for sock in sockets:
        configure_server_socket(sock, keypair)
    return auth, watcher
