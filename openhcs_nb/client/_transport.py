"""The client's I/O thread: the only code that touches its ZeroMQ sockets.

ZeroMQ sockets are not thread-safe, so one thread owns the DEALER (commands)
and the SUB (events). Other threads never touch them; they hand the thread a
function through a queue and write one byte into a pipe that the thread polls
next to its sockets (:meth:`Transport.call_soon`).

Rules:

- Requests are matched to replies by ``rid``, which this thread assigns.
- The DEALER uses ``ZMQ_IMMEDIATE``: a request is queued here until a
  connection (and its CurveZMQ handshake) is up. One never sent by its
  deadline fails with :class:`ServerUnavailable`; one sent but unanswered
  fails with :class:`RemoteTimeout`. So a request is never delivered long
  after its caller gave up, and a server restart does not replay old ones.
- ZeroMQ reconnects both sockets by itself, and the SUB re-sends its
  subscriptions. Events lost meanwhile are backfilled by the stream layer.
- Handlers (``on_reply``, ``on_error``, ``on_event``, ``on_tick``) run on this
  thread and must be quick; user code runs elsewhere (``_dispatch``).
- ``session_invalid`` is answered once per request by saying Hello again and
  re-sending the request (the server may have restarted and forgotten us).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import msgspec
import zmq

from openhcs_nb.client._keys import CurveKeys
from openhcs_nb.client.errors import (
    ConnectionClosed,
    RemoteProtocolError,
    RemoteTimeout,
    ServerUnavailable,
    remote_error,
)
from openhcs_nb.protocol import (
    ErrorReply,
    Event,
    Hello,
    ProtocolError,
    decode_event_frames,
    decode_server,
    encode,
)

log = logging.getLogger("openhcs_nb.client")

OnReply = Callable[[Any, list[memoryview]], None]
OnError = Callable[[BaseException], None]

_RECV_BATCH = 256
_TICK = 0.25


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


class Transport:
    """Owns the sockets on a private thread; every other thread calls in."""

    def __init__(
        self,
        address: str,
        keys: CurveKeys | None,
        *,
        on_event: Callable[[Event, list[memoryview]], None],
        on_tick: Callable[[float], None],
    ) -> None:
        self.address = address
        self.hello: Hello | None = None
        self.last_heard = 0.0
        self._keys = keys
        self._on_event = on_event
        self._on_tick = on_tick
        self._ctx = zmq.Context()
        self._dealer = self._socket(zmq.DEALER)
        self._dealer.immediate = True
        self._dealer.connect(address)
        self._sub: zmq.Socket | None = None
        self.event_address: str | None = None
        self._topics: set[bytes] = set()
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller = zmq.Poller()
        self._poller.register(self._wake_r, zmq.POLLIN)
        self._poller.register(self._dealer, zmq.POLLIN)
        self._pending: dict[int, _Request] = {}
        self._outbox: deque[_Request] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._ids = itertools.count(1)
        self._next_tick = 0.0
        self._stopping = False
        self._closed = threading.Event()
        self._wake_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"openhcs-client-io {address}", daemon=True
        )
        self._thread.start()

    # --- any thread ----------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the I/O thread has stopped (closed, or crashed)."""
        return self._closed.is_set()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the I/O thread soon.

        Raises
        ------
        ConnectionClosed
            The connection is closed.
        """
        with self._wake_lock:
            if self._closed.is_set():
                raise ConnectionClosed(f"the connection to {self.address} is closed")
            self._calls.put(fn)
            # A full pipe means a wake-up is pending anyway.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"\0")

    def run(self, fn: Callable[[], Any]) -> Future[Any]:
        """``fn()`` on the I/O thread; its value or exception lands in the future."""
        future: Future[Any] = Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)

        self.call_soon(call)
        return future

    def request(
        self,
        message: Any,
        buffers: Sequence[Any] = (),
        *,
        timeout: float,
        then: Callable[[Any, list[memoryview]], Any] | None = None,
    ) -> Future[Any]:
        """Send ``message``; the future gets ``then(reply, buffers)`` or the error.

        ``then`` runs on the I/O thread before the future resolves, so it may
        subscribe or follow a stream with no gap before the caller sees it.
        """
        future: Future[Any] = Future()

        def on_reply(reply: Any, bufs: list[memoryview]) -> None:
            try:
                future.set_result(then(reply, bufs) if then else (reply, bufs))
            except Exception as exc:
                future.set_exception(exc)

        self.call_soon(
            lambda: self.send(message, buffers, timeout, on_reply, future.set_exception)
        )
        return future

    def close(self) -> None:
        """Stop the I/O thread; pending requests fail with ``ConnectionClosed``."""
        if self._closed.is_set():
            return
        with contextlib.suppress(ConnectionClosed):
            self.call_soon(self._stop)
        self._thread.join(timeout=5.0)

    # --- I/O thread only -----------------------------------------------------

    def send(
        self,
        message: Any,
        buffers: Sequence[Any],
        timeout: float,
        on_reply: OnReply,
        on_error: OnError,
        *,
        retried: bool = False,
    ) -> None:
        """Queue ``message`` with a fresh rid; exactly one handler will be called."""
        if self._closed.is_set():
            on_error(ConnectionClosed(f"the connection to {self.address} is closed"))
            return
        message = msgspec.structs.replace(message, rid=next(self._ids))
        try:
            frames = encode(message, buffers)
        except ProtocolError as exc:
            on_error(RemoteProtocolError(str(exc), code=exc.code))
            return
        now = time.monotonic()
        self._outbox.append(
            _Request(
                message,
                buffers,
                frames,
                timeout,
                now + timeout,
                on_reply,
                on_error,
                retried,
            )
        )
        self._flush()

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on this thread once ``delay`` seconds have passed."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._ids), fn))

    def connect_events(self, address: str) -> None:
        """Open the SUB socket on ``address`` (again, if it was open)."""
        self.event_address = address
        self._close_sub()
        self._sub = self._socket(zmq.SUB)
        for topic in self._topics:
            self._sub.subscribe(topic)
        self._sub.connect(address)
        self._poller.register(self._sub, zmq.POLLIN)

    def subscribe(self, topic: bytes) -> None:
        """Receive events whose topic starts with ``topic``."""
        if topic not in self._topics:
            self._topics.add(topic)
            if self._sub is not None:
                self._sub.subscribe(topic)

    def unsubscribe(self, topic: bytes) -> None:
        """Stop receiving ``topic`` (no-op when not subscribed)."""
        if topic in self._topics:
            self._topics.discard(topic)
            if self._sub is not None:
                self._sub.unsubscribe(topic)

    def drop_events(self, reopen_after: float) -> None:
        """Close the SUB socket and reopen it later (tests simulate a lost link)."""
        self._close_sub()
        address = self.event_address
        if address is not None:
            self.after(reopen_after, lambda: self.connect_events(address))

    # --- internals -----------------------------------------------------------

    def _socket(self, kind: int) -> zmq.Socket:
        sock = self._ctx.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
        if self._keys is not None:
            sock.curve_serverkey = self._keys.server_public
            sock.curve_publickey = self._keys.client_public
            sock.curve_secretkey = self._keys.client_secret
        return sock

    def _close_sub(self) -> None:
        if self._sub is not None:
            self._poller.unregister(self._sub)
            self._sub.close(linger=0)
            self._sub = None

    def _stop(self) -> None:
        self._stopping = True

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._loop_once()
        except Exception:
            log.exception("the openhcs client I/O thread for %s crashed", self.address)
        finally:
            self._shutdown()

    def _loop_once(self) -> None:
        want_out = zmq.POLLOUT if self._outbox else 0
        self._poller.modify(self._dealer, zmq.POLLIN | want_out)
        ready = dict(self._poller.poll(self._poll_ms()))
        if self._wake_r in ready:
            _drain(self._wake_r)
        self._run_calls()
        if ready.get(self._dealer, 0) & zmq.POLLIN:
            self._recv_replies()
        if self._sub is not None and ready.get(self._sub, 0) & zmq.POLLIN:
            self._recv_events()
        self._flush()
        now = time.monotonic()
        self._run_timers(now)
        self._expire(now)
        if now >= self._next_tick:
            self._next_tick = now + _TICK
            self._guard(lambda: self._on_tick(now))

    def _poll_ms(self) -> int:
        now = time.monotonic()
        wake = [self._next_tick]
        wake += [r.deadline for r in self._pending.values()]
        wake += [r.deadline for r in self._outbox]
        if self._timers:
            wake.append(self._timers[0][0])
        return max(0, int((min(wake) - now) * 1000) + 1)

    def _run_calls(self) -> None:
        while True:
            try:
                fn = self._calls.get_nowait()
            except queue.Empty:
                return
            self._guard(fn)

    def _run_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            self._guard(fn)

    def _flush(self) -> None:
        while self._outbox:
            request = self._outbox[0]
            try:
                self._dealer.send_multipart(request.frames, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._outbox.popleft()
            self._pending[request.message.rid] = request

    def _expire(self, now: float) -> None:
        while self._outbox and self._outbox[0].deadline <= now:
            request = self._outbox.popleft()
            self._fail(request, ServerUnavailable(self._unreachable(request)))
        for rid in [r for r, q in self._pending.items() if q.deadline <= now]:
            request = self._pending.pop(rid)
            what = type(request.message).__name__
            self._fail(
                request,
                RemoteTimeout(
                    f"no reply from the openhcs server at {self.address} to "
                    f"{what} within {request.timeout:g} s (is it still running?)"
                ),
            )

    def _unreachable(self, request: _Request) -> str:
        return (
            f"no openhcs server answered at {self.address} within "
            f"{request.timeout:g} s: is it running? is the key right?"
        )

    def _recv_replies(self) -> None:
        for _ in range(_RECV_BATCH):
            try:
                frames = self._dealer.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.last_heard = time.monotonic()
            try:
                reply, buffers = decode_server(frames)
            except ProtocolError as exc:
                log.warning("unreadable reply from %s: %s", self.address, exc)
                request = self._pending.pop(exc.rid, None) if exc.rid else None
                if request is not None:
                    self._fail(request, RemoteProtocolError(str(exc), code=exc.code))
                continue
            self._on_reply(reply, buffers)

    def _on_reply(self, reply: Any, buffers: list[memoryview]) -> None:
        request = self._pending.pop(reply.rid, None) if reply.rid is not None else None
        if request is None:
            log.debug("reply %s to an unknown or expired request", reply.rid)
            return
        if not isinstance(reply, ErrorReply):
            self._guard(lambda: request.on_reply(reply, buffers))
            return
        if reply.code == "session_invalid" and self._may_rehello(request):
            return
        error = remote_error(
            reply.code, reply.message, reply.remote_traceback, reply.details
        )
        self._fail(request, error)

    def _may_rehello(self, request: _Request) -> bool:
        """Say Hello again, then re-send ``request`` once (server restarted?)."""
        if request.retried or self.hello is None or isinstance(request.message, Hello):
            return False

        def resend(_reply: Any, _buffers: list[memoryview]) -> None:
            self.send(
                request.message,
                request.buffers,
                request.timeout,
                request.on_reply,
                request.on_error,
                retried=True,
            )

        self.send(self.hello, (), request.timeout, resend, request.on_error)
        return True

    def _recv_events(self) -> None:
        assert self._sub is not None
        for _ in range(_RECV_BATCH):
            try:
                frames = self._sub.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.last_heard = time.monotonic()
            try:
                event, buffers = decode_event_frames(frames)
            except ProtocolError as exc:
                log.warning("unreadable event from %s: %s", self.event_address, exc)
                continue
            self._guard(lambda e=event, b=buffers: self._on_event(e, b))

    def _fail(self, request: _Request, error: BaseException) -> None:
        self._guard(lambda: request.on_error(error))

    @staticmethod
    def _guard(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("error in an openhcs client handler")

    def _shutdown(self) -> None:
        self._stopping = True
        with self._wake_lock:
            self._closed.set()
        closed = ConnectionClosed(f"the connection to {self.address} is closed")
        requests = [*self._outbox, *self._pending.values()]
        self._outbox.clear()
        self._pending.clear()
        for request in requests:
            self._fail(request, closed)
        self._run_calls()  # calls queued before closing still resolve their futures
        self._close_sub()
        self._dealer.close(linger=0)
        self._ctx.term()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
