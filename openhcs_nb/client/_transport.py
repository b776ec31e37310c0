"""The client's I/O thread: the only code that touches its ZeroMQ sockets.

ZeroMQ sockets are not thread-safe, so one thread owns the DEALER (commands),
the SUB (events) and their monitor sockets. Other threads never touch them;
they hand the thread a function through a queue and write one byte into a
pipe that the thread polls next to its sockets (:meth:`Transport.call_soon`).

Rules:

- Requests and their replies are bookkept by ``_requests.RequestBook``.
- ZeroMQ reconnects both sockets by itself, and the SUB re-sends its
  subscriptions. The monitor sockets tell this thread when a link drops (the
  requests sent on it fail at once) and when one is up again (``on_link``,
  so the stream layer backfills what was published meanwhile).
- Handlers (``on_event``, ``on_tick``, ``on_link``, request handlers) run on
  this thread and must be quick; user code runs elsewhere (``_dispatch``).
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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from openhcs_nb.client._keys import CurveKeys
from openhcs_nb.client._requests import OnError, OnReply, RequestBook, guard
from openhcs_nb.client.errors import ConnectionClosed
from openhcs_nb.protocol import Event, ProtocolError, decode_event_frames

log = logging.getLogger("openhcs_nb.client")

_RECV_BATCH = 256
_TICK = 0.25
_LINK_EVENTS = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED


class Transport:
    """Owns the sockets on a private thread; every other thread calls in."""

    def __init__(
        self,
        address: str,
        keys: CurveKeys | None,
        *,
        on_event: Callable[[Event, list[memoryview]], None],
        on_tick: Callable[[float], None],
        on_link: Callable[[str, bool], None],
    ) -> None:
        self.address = address
        self.event_address: str | None = None
        self.requests = RequestBook(address)
        self._keys = keys
        self._on_event = on_event
        self._on_tick = on_tick
        self._on_link = on_link
        self._ctx = zmq.Context()
        self._poller = zmq.Poller()
        self._monitors: dict[zmq.Socket, tuple[zmq.Socket, str]] = {}
        self._dealer = self._socket(zmq.DEALER, "commands")
        self._dealer.immediate = True
        self._dealer.connect(address)
        self._sub: zmq.Socket | None = None
        self._topics: set[bytes] = set()
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller.register(self._wake_r, zmq.POLLIN)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_ids = itertools.count()
        self._next_tick = 0.0
        self._stopping = False
        self._closed = threading.Event()
        self._wake_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"openhcs-client-io {address}", daemon=True
        )
        self._thread.start()

    # --- any thread ----------------------------------------------------------

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
        with contextlib.suppress(ConnectionClosed):
            self.call_soon(self._stop)
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout=5.0)

    # --- I/O thread only -----------------------------------------------------

    def send(
        self,
        message: Any,
        buffers: Sequence[Any],
        timeout: float,
        on_reply: OnReply,
        on_error: OnError,
    ) -> None:
        """Queue ``message``; exactly one of the handlers will be called."""
        if self._closed.is_set():
            on_error(ConnectionClosed(f"the connection to {self.address} is closed"))
            return
        self.requests.add(message, buffers, timeout, on_reply, on_error)
        self.requests.flush(self._send_frames)

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on this thread once ``delay`` seconds have passed."""
        when = time.monotonic() + delay
        heapq.heappush(self._timers, (when, next(self._timer_ids), fn))

    def connect_events(self, address: str) -> None:
        """Open the SUB socket on ``address`` (again, if it was open)."""
        self.event_address = address
        self._close_sub()
        self._sub = self._socket(zmq.SUB, "events")
        for topic in self._topics:
            self._sub.subscribe(topic)
        self._sub.connect(address)

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

    # --- sockets -------------------------------------------------------------

    def _socket(self, kind: int, link: str) -> zmq.Socket:
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
        monitor = sock.get_monitor_socket(_LINK_EVENTS)
        self._monitors[monitor] = (sock, link)
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(monitor, zmq.POLLIN)
        return sock

    def _close_socket(self, sock: zmq.Socket) -> None:
        for monitor, (owner, _) in list(self._monitors.items()):
            if owner is sock:
                sock.disable_monitor()
                self._poller.unregister(monitor)
                monitor.close(linger=0)
                del self._monitors[monitor]
        self._poller.unregister(sock)
        sock.close(linger=0)

    def _close_sub(self) -> None:
        if self._sub is not None:
            self._close_socket(self._sub)
            self._sub = None

    def _send_frames(self, frames: list[Any]) -> bool:
        try:
            self._dealer.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        return True

    # --- the loop --------------------------------------------------------------

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
        want_out = zmq.POLLOUT if self.requests.waiting_to_send else 0
        self._poller.modify(self._dealer, zmq.POLLIN | want_out)
        ready = dict(self._poller.poll(self._poll_ms()))
        if self._wake_r in ready:
            _drain(self._wake_r)
        self._run_calls()
        if ready.get(self._dealer, 0) & zmq.POLLIN:
            self._recv(self._dealer, self.requests.on_frames)
        if self._sub is not None and ready.get(self._sub, 0) & zmq.POLLIN:
            self._recv(self._sub, self._event_frames)
        for monitor in [m for m in self._monitors if m in ready]:
            self._link_changes(monitor)
        self.requests.flush(self._send_frames)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            guard(heapq.heappop(self._timers)[2])
        self.requests.expire(now)
        if now >= self._next_tick:
            self._next_tick = now + _TICK
            guard(lambda: self._on_tick(now))

    def _poll_ms(self) -> int:
        wake = [self._next_tick]
        deadline = self.requests.next_deadline()
        if deadline is not None:
            wake.append(deadline)
        if self._timers:
            wake.append(self._timers[0][0])
        return max(0, int((min(wake) - time.monotonic()) * 1000) + 1)

    def _run_calls(self) -> None:
        while True:
            try:
                fn = self._calls.get_nowait()
            except queue.Empty:
                return
            guard(fn)

    def _recv(self, sock: zmq.Socket, handle: Callable[[list[Any]], None]) -> None:
        for _ in range(_RECV_BATCH):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            guard(lambda f=frames: handle(f))

    def _event_frames(self, frames: list[Any]) -> None:
        try:
            event, buffers = decode_event_frames(frames)
        except ProtocolError as exc:
            log.warning("unreadable event from %s: %s", self.event_address, exc)
            return
        self._on_event(event, buffers)

    def _link_changes(self, monitor: zmq.Socket) -> None:
        sock, link = self._monitors[monitor]
        for _ in range(_RECV_BATCH):
            try:
                change = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            up = change["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
            if not up and sock is self._dealer:
                self.requests.connection_lost()
            where = self.event_address if link == "events" else self.address
            log.debug("%s link to %s is %s", link, where, "up" if up else "down")
            guard(lambda link=link, up=up: self._on_link(link, up))

    def _shutdown(self) -> None:
        self._stopping = True
        with self._wake_lock:
            self._closed.set()
        closed = ConnectionClosed(f"the connection to {self.address} is closed")
        self.requests.fail_all(closed)
        self._run_calls()  # calls queued before closing still resolve their futures
        self._close_sub()
        self._close_socket(self._dealer)
        self._ctx.term()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
