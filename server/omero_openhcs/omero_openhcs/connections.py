"""One execution-server connection per OMERO session, bounded and expiring.

Rules:

- A connection is opened with the plugin's own CurveZMQ key and the user's
  OMERO session key; the execution server verifies that session and acts as
  its OMERO user only. The key of the cache is the session key, so two users
  never share a connection and a new login gets a new one.
- At most ``max_connections`` are kept: the least recently used is closed
  first. One unused for ``idle_seconds`` is closed on the next lookup.
- A connection whose session the server refused, or which the server lost,
  is dropped (``discard``) so the next request opens a fresh one.
- The handles the results pages follow are kept (the newest
  ``HANDLES_PER_CONNECTION`` per connection), so a page's polls read one
  followed handle instead of attaching anew each time.
- The connection factory is a constructor argument (``openhcs_nb.connect``
  by default), so nothing in here knows about tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omero_openhcs.settings import PluginSettings, plugin_settings

log = logging.getLogger(__name__)

#: ``factory(settings, omero_session) -> Connection``
Factory = Callable[[PluginSettings, str], Any]


def open_connection(settings: PluginSettings, omero_session: str) -> Any:
    """``openhcs_nb.connect`` as this plugin's key, acting through ``omero_session``."""
    from openhcs_nb import connect

    return connect(
        settings.server,
        server_key=settings.server_key or None,
        client_keys=settings.client_keys,
        omero_session=omero_session,
        timeout=settings.timeout,
    )


#: Execution handles a connection keeps followed for the results pages.
HANDLES_PER_CONNECTION = 32


@dataclass
class _Entry:
    connection: Any
    used: float
    # The client holds handles weakly; a page polls once a second, so without
    # a strong reference each poll would attach anew and refetch every event.
    handles: OrderedDict[str, Any] = field(default_factory=OrderedDict)


class ConnectionPool:
    """Connections keyed by OMERO session key; thread-safe (Django threads)."""

    def __init__(
        self,
        settings: PluginSettings,
        factory: Factory = open_connection,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._factory = factory
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> ConnectionPool:
        """A pool for the settings OMERO.web read from ``omero config``."""
        return cls(plugin_settings())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, omero_session: str) -> Any:
        """The live connection for ``omero_session``, opened when needed.

        Raises
        ------
        openhcs_nb.client.errors.RemoteError
            The server could not be reached or refused the session.
        """
        stale = self._expire()
        with self._lock:
            entry = self._entries.get(omero_session)
            if entry is not None:
                entry.used = self._clock()
                self._entries.move_to_end(omero_session)
        self._close_all(stale)
        if entry is not None:
            return entry.connection
        connection = self._factory(self.settings, omero_session)
        with self._lock:
            raced = self._entries.get(omero_session)
            if raced is None:
                self._entries[omero_session] = _Entry(connection, self._clock())
                evicted = self._over_bound()
            else:
                evicted, connection = [connection], raced.connection
        self._close_all(evicted)
        return connection

    def execution(self, omero_session: str, execution_id: str) -> Any:
        """The followed ``Execution`` handle of ``execution_id`` on that connection.

        Raises
        ------
        openhcs_nb.client.errors.RemoteUnknownExecution
            No such execution for this OMERO user (the server decides).
        """
        connection = self.get(omero_session)
        handle = connection.attach(execution_id)
        with self._lock:
            entry = self._entries.get(omero_session)
            if entry is not None and entry.connection is connection:
                entry.handles[execution_id] = handle
                entry.handles.move_to_end(execution_id)
                while len(entry.handles) > HANDLES_PER_CONNECTION:
                    entry.handles.popitem(last=False)
        return handle

    def discard(self, omero_session: str) -> None:
        """Close and forget the connection of ``omero_session`` (logout, refusal)."""
        with self._lock:
            entry = self._entries.pop(omero_session, None)
        if entry is not None:
            self._close_all([entry.connection])

    def close(self) -> None:
        """Close every connection (process shutdown, tests)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        self._close_all([e.connection for e in entries])

    def _expire(self) -> list[Any]:
        now = self._clock()
        with self._lock:
            old = [
                key
                for key, entry in self._entries.items()
                if now - entry.used > self.settings.idle_seconds
            ]
            return [self._entries.pop(key).connection for key in old]

    def _over_bound(self) -> list[Any]:
        evicted = []
        while len(self._entries) > max(1, self.settings.max_connections):
            _, entry = self._entries.popitem(last=False)
            evicted.append(entry.connection)
        return evicted

    @staticmethod
    def _close_all(connections: list[Any]) -> None:
        for connection in connections:
            try:
                connection.close()
            except Exception:  # closing must never fail a request
                log.warning("closing an openhcs connection failed", exc_info=True)
