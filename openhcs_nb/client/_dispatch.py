"""The callback thread: user callbacks run here, in order, off the I/O thread.

A slow or failing callback must never stall the socket loop, so the I/O thread
only enqueues; this one thread per connection runs each callback in FIFO
order. An exception in a callback is logged and the next one runs.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("openhcs_nb.client")

_STOP = object()


class CallbackThread:
    """Runs queued functions one by one, in the order they were queued."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        """The thread id, so code can tell whether it runs inside a callback."""
        return self._thread.ident

    def put(self, fn: Callable[[], None]) -> None:
        """Queue ``fn``; never blocks."""
        self._queue.put(fn)

    def close(self, timeout: float = 5.0) -> None:
        """Run what is queued, then stop (waits unless called from a callback)."""
        self._queue.put(_STOP)
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            fn = self._queue.get()
            if fn is _STOP:
                return
            try:
                fn()  # type: ignore[operator]
            except Exception:
                log.exception("an openhcs callback raised; the next one still runs")
            del fn  # while idle, hold nothing the last callback referred to
