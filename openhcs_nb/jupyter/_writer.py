"""One writer per widget: updates from any thread, applied in batches on one loop.

Client callbacks run on the connection's callback thread, but widget traits
must change on the kernel's event loop: a comm message sent from another
thread can interleave with the kernel's own messages. So callbacks only
``put`` items into a :class:`CoalescingWriter`; the writer schedules a single
``flush`` on the kernel's IOLoop (``kernel.io_loop.add_callback``, the one
thread-safe entry into it), waits ``interval`` seconds so that a burst of
wells becomes one batch, and hands the whole batch to ``apply``.

Rules:

- ``put`` never blocks and may be called from any thread;
- at most one flush is pending at a time, and flushes never overlap, so
  ``apply`` is the single writer of the widget's traits;
- outside a kernel (scripts, tests) a daemon timer thread flushes instead,
  and ``flush()`` can be called directly to apply what is queued now.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger("openhcs_nb.jupyter")

T = TypeVar("T")

#: Seconds a batch collects before it is applied: fast enough to look live,
#: slow enough that a 384-well burst is a handful of comm messages.
DEFAULT_INTERVAL = 0.15


def kernel_loop() -> Any | None:
    """The running IPython kernel's IOLoop, or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    return getattr(kernel, "io_loop", None)


def _call_later_from_any_thread(loop: Any, delay: float, fn: Callable[[], Any]) -> None:
    """Schedule ``fn`` on ``loop`` after ``delay`` s (tornado or asyncio loop)."""
    add_callback = getattr(loop, "add_callback", None)
    if add_callback is not None:  # tornado IOLoop (ipykernel)
        add_callback(lambda: loop.call_later(delay, fn))
    else:  # asyncio event loop
        loop.call_soon_threadsafe(lambda: loop.call_later(delay, fn))


class CoalescingWriter(Generic[T]):
    """Collects items from any thread; ``apply(batch)`` runs on one loop, serially."""

    def __init__(
        self,
        apply: Callable[[list[T]], None],
        *,
        interval: float = DEFAULT_INTERVAL,
        loop: Any | None = None,
    ) -> None:
        self._apply = apply
        self._interval = interval
        self._loop = loop if loop is not None else kernel_loop()
        self._items: list[T] = []
        self._lock = threading.Lock()  # guards _items, _scheduled, _closed
        self._apply_lock = threading.Lock()  # one flush at a time
        self._scheduled = False
        self._closed = False

    @property
    def in_kernel(self) -> bool:
        """Whether flushes run on an event loop rather than a timer thread."""
        return self._loop is not None

    def put(self, item: T) -> None:
        """Queue ``item`` and make sure a flush is scheduled; never blocks."""
        with self._lock:
            if self._closed:
                return
            self._items.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._schedule()
        except RuntimeError:  # the loop is closed (kernel shutting down)
            with self._lock:
                self._scheduled = False

    def flush(self) -> int:
        """Apply everything queued now, in order; returns how many items."""
        with self._apply_lock:
            with self._lock:
                items, self._items = self._items, []
                self._scheduled = False
            if items:
                try:
                    self._apply(items)
                except Exception:
                    log.exception("a widget update failed; later updates still apply")
            return len(items)

    def close(self) -> None:
        """Drop what is queued and ignore later ``put`` calls."""
        with self._lock:
            self._closed = True
            self._items = []

    def _schedule(self) -> None:
        if self._loop is not None:
            _call_later_from_any_thread(self._loop, self._interval, self.flush)
            return
        timer = threading.Timer(self._interval, self.flush)
        timer.daemon = True
        timer.start()
