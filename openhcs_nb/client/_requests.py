"""Requests in flight on the DEALER: rids, deadlines, replies (no sockets here).

Rules:

- :meth:`RequestBook.add` gives each message a fresh ``rid`` and encodes it;
  exactly one of its two handlers is called later, whatever happens.
- A request waits in the *outbox* until the socket takes it (``ZMQ_IMMEDIATE``
  means: until a connection and its handshake are up). One never taken by its
  deadline fails with :class:`ServerUnavailable`; one taken but unanswered
  fails with :class:`RemoteTimeout`; one taken when the connection then
  drops fails at once (its reply can no longer come back).
- ``session_invalid`` is answered once per request by saying Hello again and
  re-sending the request (a restarted server may have forgotten the session).
- Handlers run on the I/O thread; an exception in one is logged, never raised.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from openhcs_nb.client.errors import (
    RemoteProtocolError,
    RemoteTimeout,
    ServerUnavailable,
    remote_error,
)
from openhcs_nb.protocol import ErrorReply, Hello, ProtocolError, decode_server, encode

log = logging.getLogger("openhcs_nb.client")

OnReply = Callable[[Any, list[memoryview]], None]
OnError = Callable[[BaseException], None]


def guard(fn: Callable[[], None]) -> None:
    """Run a handler; log what it raises, so the I/O loop carries on."""
    try:
        fn()
    except Exception:
        log.exception("error in an openhcs client handler")


@dataclass
class _Request:
    message: Any
    buffers: Sequence[Any]
    frames: list[Any]
    timeout: float
    deadline: float
    on_reply: OnReply
    on_error: OnError
    retried: bool = False


class RequestBook:
    """The outbox and the sent-but-unanswered requests of one DEALER."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.hello: Hello | None = None
        self._ids = itertools.count(1)
        self._outbox: deque[_Request] = deque()
        self._pending: dict[int, _Request] = {}
        self._delayed: list[tuple[float, _Request]] = []  # rate limited: resend at

    @property
    def waiting_to_send(self) -> bool:
        """Whether some request still waits for the socket."""
        return bool(self._outbox)

    def next_deadline(self) -> float | None:
        """The earliest deadline of any request, or None."""
        deadlines = [r.deadline for r in self._outbox]
        deadlines += [r.deadline for r in self._pending.values()]
        deadlines += [when for when, _ in self._delayed]
        return min(deadlines, default=None)

    def add(
        self,
        message: Any,
        buffers: Sequence[Any],
        timeout: float,
        on_reply: OnReply,
        on_error: OnError,
        *,
        retried: bool = False,
    ) -> None:
        """Queue ``message`` under a fresh rid (encoding errors fail it at once)."""
        message = msgspec.structs.replace(message, rid=next(self._ids))
        try:
            frames = encode(message, buffers)
        except ProtocolError as exc:
            error = RemoteProtocolError(str(exc), code=exc.code)
            guard(lambda: on_error(error))
            return
        deadline = time.monotonic() + timeout
        self._outbox.append(
            _Request(
                message, buffers, frames, timeout, deadline, on_reply, on_error, retried
            )
        )

    def flush(self, send: Callable[[list[Any]], bool]) -> None:
        """Hand queued requests to ``send`` until it says the socket is full."""
        if self._delayed:
            now = time.monotonic()
            due = [r for when, r in self._delayed if when <= now]
            self._delayed = [(w, r) for w, r in self._delayed if w > now]
            self._outbox.extend(due)
        while self._outbox:
            request = self._outbox[0]
            if not send(request.frames):
                return
            self._outbox.popleft()
            self._pending[request.message.rid] = request

    def expire(self, now: float) -> None:
        """Fail the requests whose deadline has passed."""
        for request in [r for r in self._outbox if r.deadline <= now]:
            self._outbox.remove(request)
            self._fail(
                request,
                ServerUnavailable(
                    f"no openhcs server answered at {self.address} within "
                    f"{request.timeout:g} s: is it running? is the key right?"
                ),
            )
        for rid in [rid for rid, r in self._pending.items() if r.deadline <= now]:
            request = self._pending.pop(rid)
            self._fail(
                request,
                RemoteTimeout(
                    f"no reply from the openhcs server at {self.address} to "
                    f"{_name(request)} within {request.timeout:g} s "
                    "(is it still running?)"
                ),
            )

    def connection_lost(self) -> None:
        """The link dropped: replies to what was sent can no longer arrive."""
        lost, self._pending = list(self._pending.values()), {}
        for request in lost:
            self._fail(
                request,
                ServerUnavailable(
                    f"lost the connection to {self.address} while waiting for "
                    f"the reply to {_name(request)}"
                ),
            )

    def fail_all(self, error: BaseException) -> None:
        """Fail every request (the connection is closing)."""
        requests = [*self._outbox, *self._pending.values()]
        requests += [r for _, r in self._delayed]
        self._outbox.clear()
        self._pending.clear()
        self._delayed.clear()
        for request in requests:
            self._fail(request, error)

    def on_frames(self, frames: Sequence[Any]) -> None:
        """Decode a received reply and call its request's handler."""
        try:
            reply, buffers = decode_server(frames)
        except ProtocolError as exc:
            log.warning("unreadable reply from %s: %s", self.address, exc)
            request = self._pending.pop(exc.rid, None) if exc.rid else None
            if request is not None:
                self._fail(request, RemoteProtocolError(str(exc), code=exc.code))
            return
        request = self._pending.pop(reply.rid, None) if reply.rid is not None else None
        if request is None:
            log.debug("reply %s to an unknown or expired request", reply.rid)
            return
        if not isinstance(reply, ErrorReply):
            guard(lambda: request.on_reply(reply, buffers))
            return
        if reply.code == "session_invalid" and self._rehello(request):
            return
        if reply.code == "rate_limited" and self._resend_later(request, reply):
            return
        error = remote_error(
            reply.code, reply.message, reply.remote_traceback, reply.details
        )
        self._fail(request, error)

    def _rehello(self, request: _Request) -> bool:
        """Say Hello again, then re-send ``request`` once."""
        if request.retried or self.hello is None or isinstance(request.message, Hello):
            return False

        def resend(_reply: Any, _buffers: list[memoryview]) -> None:
            self.add(
                request.message,
                request.buffers,
                request.timeout,
                request.on_reply,
                request.on_error,
                retried=True,
            )

        self.add(self.hello, (), request.timeout, resend, request.on_error)
        return True

    def _resend_later(self, request: _Request, reply: ErrorReply) -> bool:
        """Send a rate-limited request again once the server allows it."""
        try:
            wait = float(reply.details.get("retry_after") or 0.1)
        except (TypeError, ValueError):
            wait = 0.1
        when = time.monotonic() + min(max(wait, 0.01), 5.0)
        if when >= request.deadline:
            return False
        self._delayed.append((when, request))
        return True

    @staticmethod
    def _fail(request: _Request, error: BaseException) -> None:
        guard(lambda: request.on_error(error))


def _name(request: _Request) -> str:
    return type(request.message).__name__
