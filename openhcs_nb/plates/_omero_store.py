"""The connection's one RawPixelsStore, shared by every plate read through it.

omero-py's ``BlitzGateway.createRawPixelsStore()`` returns the SAME proxy for
the whole connection (it is cached as ``_proxies['rawpixels']``), and which
Pixels that store is set to is state on the server. So the pixels id belongs
to the connection, never to a plate: on the execution server one user's plates
share one joined session, and a plate that remembered "my store is set to my
pixels" would silently read another plate's pixels once that plate moved it.

Rules, all under one lock per gateway (threads read through one session):

- the current ``(group, pixels id)`` is tracked here, per gateway;
- ``setPixelsId`` is called whenever the wanted id differs from it;
- a call that fails leaves the state unknown, so the next read sets it again
  (omero-py may have replaced the service behind the proxy while retrying);
- a proxy other than the one last set (a rejoined gateway) is set again;
- the store is closed and fetched again when the group changes, because a
  stateful service keeps the group it was created in.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

_LOCK = threading.Lock()
_SHARED: weakref.WeakKeyDictionary[Any, SharedPixelStore] = weakref.WeakKeyDictionary()


class SharedPixelStore:
    """One gateway's lock and what its RawPixelsStore is set to.

    Neither the gateway nor the store is held strongly: the store proxy refers
    to its gateway, so holding it here would keep every gateway ever read
    from alive in the registry. The store is asked for on each read
    (``createRawPixelsStore`` is a cached lookup in omero-py) and recognised
    by a weak reference; a different proxy means nothing is set on it yet.
    """

    def __init__(self, gateway: Any) -> None:
        self._gateway = weakref.ref(gateway)
        self.lock = threading.RLock()
        self._last: Any = None  # weakref (or id) of the proxy last set
        self._group: int | None = None  # the group that proxy was used in
        self._current: int | None = None  # the pixels id it is set to

    @contextlib.contextmanager
    def reading(self, group_id: int | None, pixels_id: int) -> Iterator[Any]:
        """Hold the lock and yield the store set to ``pixels_id``.

        Raises
        ------
        Exception
            Whatever omero raises; the store's state is then forgotten.
        """
        with self.lock:
            try:
                yield self._set(group_id, pixels_id)
            except BaseException:
                self._current = None
                raise

    def _set(self, group_id: int | None, pixels_id: int) -> Any:
        store = self._fetch()
        if not self._is_last(store):
            self._current = None
        elif self._group != group_id:  # a stateful service keeps its group
            with contextlib.suppress(Exception):  # the session may be gone
                store.close()
            store = self._fetch()
            self._current = None
        if self._current == pixels_id and self._group == group_id:
            return store
        self._remember(store, group_id)
        # Stateful services need a concrete group, never "-1".
        ctx = {"omero.group": str(group_id)} if group_id else None
        store.setPixelsId(pixels_id, False, ctx)
        self._current = pixels_id
        return store

    def _fetch(self) -> Any:
        gateway = self._gateway()
        if gateway is None:
            raise RuntimeError("the OMERO connection of this store is gone")
        return gateway.createRawPixelsStore()

    def _is_last(self, store: Any) -> bool:
        last = self._last
        if isinstance(last, weakref.ref):
            return last() is store
        return last is not None and last == id(store)

    def _remember(self, store: Any, group_id: int | None) -> None:
        self._current, self._group = None, group_id
        try:
            self._last = weakref.ref(store)
        except TypeError:  # a proxy without weak references
            self._last = id(store)

    def close(self) -> None:
        """Release the service; the next read fetches and sets it again."""
        with self.lock:
            if self._current is None and self._last is None:
                return
            self._current, self._last = None, None
            gateway = self._gateway()
            if gateway is not None:
                with contextlib.suppress(Exception):  # the session may be gone
                    gateway.createRawPixelsStore().close()


def shared_store(gateway: Any) -> SharedPixelStore:
    """The :class:`SharedPixelStore` of ``gateway`` (made on first use)."""
    with _LOCK:
        found = _SHARED.get(gateway)
        if found is None:
            found = _SHARED[gateway] = SharedPixelStore(gateway)
        return found
