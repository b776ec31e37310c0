"""Work that must not run on the command loop: loading, compiling, opening plates.

Parsing pipeline code, opening a plate (OMERO queries, reading metadata) and
compiling take from milliseconds to seconds; on the loop they would delay
every other user's commands. They run on a small thread pool instead, with two
budgets: a queue bound (``[limits] compile_queue``; more is refused as
``busy`` at once) and a waiting time (``compile_timeout_s``: work that waited
longer is refused, since its client has likely given up). The code itself is
bounded by the safe loader's size, depth and node limits.

A job answers through ``reply_later``; its refusals are typed errors, and an
unexpected failure becomes an incident, exactly as on the loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.protocol import error_reply
from openhcs_nb.server._loop_replies import internal_reply, log_incident


class BusyError(OpenHCSError):
    """The server's compile queue is full; retry in a moment."""

    code = "busy"


Reply = Callable[[Any, list[Any] | None], None]
Job = Callable[[], tuple[Any, list[Any]] | None]
OnRefused = Callable[[OpenHCSError], None]


class Offloader:
    """A bounded pool that runs one command's heavy part and sends its reply."""

    def __init__(self, threads: int, queue: int, max_wait_s: float) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, threads), thread_name_prefix="openhcs-compile"
        )
        self.queue = max(1, queue)
        #: One user may fill at most half of the queue.
        self.per_user = max(2, self.queue // 2)
        self.max_wait_s = max_wait_s
        self._pending = 0
        self._by_user: dict[str, int] = {}
        self._lock = threading.Lock()

    def submit(
        self,
        rid: int,
        job: Job,
        reply: Reply,
        on_refused: OnRefused,
        what: str,
        user: str = "",
    ) -> None:
        """Queue ``job``; ``reply(message, buffers)`` sends its answer.

        Raises
        ------
        BusyError
            ``queue`` jobs are already waiting or running, or ``user`` has a
            half of them.
        """
        with self._lock:
            mine = self._by_user.get(user, 0)
            if self._pending >= self.queue or mine >= self.per_user:
                raise BusyError(
                    f"the server is compiling {self._pending} pipelines, {mine} of "
                    f"them yours ([limits] compile_queue = {self.queue}); retry in "
                    "a moment"
                )
            self._pending += 1
            self._by_user[user] = mine + 1
        queued = time.monotonic()

        def run() -> None:
            try:
                waited = time.monotonic() - queued
                if waited > self.max_wait_s:
                    raise BusyError(
                        f"the request waited {waited:.1f} s for a compile slot "
                        f"([limits] compile_timeout_s = {self.max_wait_s:g}); retry"
                    )
                out = job()
                if out is not None:
                    reply(out[0], out[1])
            except OpenHCSError as exc:
                on_refused(exc)
                reply(error_reply(exc, rid), None)
            except Exception as exc:
                reply(internal_reply(rid, log_incident(exc, what)), None)
            finally:
                with self._lock:
                    self._pending -= 1
                    left = self._by_user.get(user, 1) - 1
                    if left > 0:
                        self._by_user[user] = left
                    else:
                        self._by_user.pop(user, None)

        self._pool.submit(run)

    def close(self) -> None:
        """Drop queued jobs and stop the threads (running ones finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
