"""Faults that must end a run cleanly: a store that cannot be written.

When the disk is full, the failure of a run cannot be written either. The run
still gives up its slot at once; its failure is kept here, in memory, and
written again every few seconds until the store takes it. Only then is the
``Finished(state="failed")`` event published, so what subscribers see is durable.
A run therefore never stays "running" once space is back.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Texts that mean "the storage is full", not "this well is wrong".
_FULL_TEXT = (
    "[Errno 28]",
    "[errno 28]",
    "[Errno 122]",
    "No space left on device",
    "Disk quota exceeded",
    "disk is full",
)


def describe_fault(exc: BaseException, where: str) -> str:
    """A one-line cause naming what failed, e.g. ``storage_error: ...: disk full``."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if isinstance(exc, (sqlite3.Error, OSError)):
        return f"storage_error: {where} could not be written ({detail})"
    return f"{where} failed ({detail})"


def storage_cause(kind: str, message: str) -> str | None:
    """The run's cause when a well failed because its outputs hit a full disk.

    A well error is only text once it crosses the worker's pipe, so the errno
    is read back from the message (whatever library raised it). Any other
    failure is the well's own: None.
    """
    if any(text in message for text in _FULL_TEXT):
        line = message.strip().splitlines()[0]
        return f"storage_error: the results store could not be written ({kind}: {line})"
    return None


class PendingFailures:
    """Run failures not yet written, retried on a timer thread until stored.

    ``attempt(execution_id, cause)`` writes one failure and publishes it; it
    returns True once nothing is left to do (stored, or moot because the run
    ended otherwise) and False or raises to be tried again later.
    """

    def __init__(
        self, attempt: Callable[[str, str], bool], every_s: float = 2.0
    ) -> None:
        self._attempt = attempt
        self.every_s = every_s
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, str]] = {}  # id -> (user, cause)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, execution_id: str, user: str, cause: str) -> None:
        """Keep a failure that could not be written; the timer retries it."""
        with self._lock:
            self._pending.setdefault(execution_id, (user, cause))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._retry, name="retry-failures", daemon=True
                )
                self._thread.start()
        log.warning(
            "execution %s: failure not stored yet, retrying: %s", execution_id, cause
        )

    def count(self, user: str) -> int:
        """The user's runs that ended but whose failure is not stored yet."""
        with self._lock:
            return sum(1 for owner, _ in self._pending.values() if owner == user)

    def ids(self) -> list[str]:
        """Ids of the runs whose failure is not stored yet."""
        with self._lock:
            return list(self._pending)

    def stop(self) -> None:
        """Stop retrying; what is left stays RUNNING and is resumed at start-up."""
        self._stop.set()

    def _retry(self) -> None:
        while not self._stop.wait(self.every_s):
            with self._lock:
                items = list(self._pending.items())
            for execution_id, (_, cause) in items:
                try:
                    done = self._attempt(execution_id, cause)
                except Exception as exc:
                    log.debug("execution %s: retry failed: %s", execution_id, exc)
                    done = False
                if done:
                    with self._lock:
                        self._pending.pop(execution_id, None)
                    log.info("execution %s: failure stored: %s", execution_id, cause)
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
