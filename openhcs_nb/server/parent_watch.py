"""Stop the server when the process that started it is gone.

A demo server started by a notebook kernel (``LocalServer``) must not outlive
that kernel: ``openhcs-server serve --parent-pid PID`` polls PID about once a
second and, when it has gone, asks the server to stop exactly as SIGTERM does
(running wells interrupted and kept, workers stopped, sockets closed).

When PID is this process's own parent, "gone" means we were re-parented
(``os.getppid()`` changed): that is exact even while the dead parent is an
unreaped zombie and cannot be fooled by a reused pid. For any other PID the
test is ``kill(pid, 0)``.

Linux's ``PR_SET_PDEATHSIG`` is deliberately not used: it fires when the
*thread* that forked the server exits, not the process, so a kernel that
starts the server from a short-lived thread would lose it at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def process_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class ParentWatch:
    """A daemon thread that calls ``on_gone`` once, when ``pid`` has exited."""

    def __init__(
        self, pid: int, on_gone: Callable[[], None], *, every_s: float = 1.0
    ) -> None:
        self.pid = pid
        self.on_gone = on_gone
        self.every_s = every_s
        self._direct = os.getppid() == pid
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="parent-watch", daemon=True
        )

    def alive(self) -> bool:
        """Whether the watched process is still there."""
        if self._direct:
            return os.getppid() == self.pid
        return process_alive(self.pid)

    def start(self) -> ParentWatch:
        """Start polling; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (the server is stopping for another reason)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.alive():
                log.warning("parent process %d has gone: stopping", self.pid)
                self.on_gone()
                return
            self._stop.wait(self.every_s)
