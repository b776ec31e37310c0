"""Everything the server sends: replies, events, and hand-over from other threads.

Only the loop thread touches the sockets. Other threads (dispatchers, the
compile pool) hand it replies and events through a private inproc PUSH socket
each; the loop sends them. Every send is non-blocking: a peer that is gone or
whose queue is full loses that message (events are stored, so subscribers
backfill; a reply lost this way times out at the client). Large messages are
tracked in the :class:`~openhcs_nb.server.outbox.Outbox`, so one peer's unread
replies, or the event socket's backlog, stay within their byte budget.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq

from openhcs_nb.protocol import Limits, encode, event_topic
from openhcs_nb.server._events import frames_of
from openhcs_nb.server._loop_replies import busy_reply
from openhcs_nb.server.jobs import JobStore, StoredEvent
from openhcs_nb.server.outbox import TRACK_AT, Outbox

log = logging.getLogger(__name__)
PUB, REPLY = b"pub", b"reply"
_EVENTS_KEY = b"\x00events"  # the outbox account of the event socket


class Outbound:
    """Sends for the loop thread; ``publish``/``reply_later`` from any thread."""

    def __init__(self, limits: Limits, budget: int) -> None:
        self.limits = limits
        self.outbox = Outbox(budget)
        self._tls = threading.local()
        self._push_lock = threading.Lock()
        self._pushes: list[zmq.Socket] = []
        self._topics: dict[str, bytes] = {}
        self.loop_thread: threading.Thread | None = None

    def bind(
        self,
        ctx: zmq.Context,
        inproc: str,
        router: zmq.Socket,
        pub: zmq.Socket,
        store: JobStore,
    ) -> None:
        """Use these sockets and store (call once the server has made them)."""
        self._ctx, self._inproc = ctx, inproc
        self.router, self.pub, self.store = router, pub, store

    # -- loop thread -------------------------------------------------------------

    def send_reply(
        self, identity: bytes, reply: Any, buffers: list[Any] | None = None
    ) -> None:
        """Send a reply now; only the loop thread may call this."""
        frames = encode(reply, buffers or [], limits=self.limits)
        self.send_frames(identity, frames, rid=getattr(reply, "rid", None))

    def send_frames(
        self, identity: bytes, frames: list[Any], rid: int | None = None
    ) -> None:
        """Send an encoded reply, or ``busy`` if the peer's budget is full."""
        size = sum(memoryview(f).nbytes for f in frames)
        if size >= TRACK_AT and not self.outbox.fits(identity, size):
            held = self.outbox.held(identity)
            log.warning("peer %s: %d bytes unread, reply refused", identity.hex(), held)
            frames = encode(busy_reply(rid, held, self.outbox.budget))
            size = 0
        tracker = _send(self.router, [identity, *frames])
        self.outbox.add(identity, tracker, size)

    def send_event(self, execution_id: str, frames: list[Any]) -> None:
        """Publish an event's frames under its execution's topic."""
        size = sum(memoryview(f).nbytes for f in frames)
        if size >= TRACK_AT and not self.outbox.fits(_EVENTS_KEY, size):
            return  # stored already: subscribers see the gap and fetch it
        topic = self._topics.get(execution_id)
        if topic is None:
            record = self.store.get_execution(execution_id)
            if record is None:
                return
            topic = self._topics[execution_id] = event_topic(
                execution_id, record.stream_key
            )
        tracker = _send(self.pub, [topic, *frames])
        self.outbox.add(_EVENTS_KEY, tracker, size)

    def handed_over(self, frames: list[zmq.Frame]) -> None:
        """Send what another thread pushed to the loop."""
        kind = frames[0].bytes
        if kind == PUB:
            self.send_event(frames[1].bytes.decode("ascii"), frames[2:])
        elif kind == REPLY:
            rid_text = frames[2].bytes
            rid = int(rid_text) if rid_text else None
            self.send_frames(frames[1].bytes, frames[3:], rid)

    # -- any thread ----------------------------------------------------------------

    def publish(self, stored: StoredEvent) -> None:
        """Publish a stored event (any thread); it is durable already."""
        frames = frames_of(stored)
        if threading.current_thread() is self.loop_thread:
            self.send_event(stored.execution_id, frames)
            return
        head = [PUB, stored.execution_id.encode("ascii")]
        self._push().send_multipart([*head, *frames], copy=False)

    def reply_later(
        self, identity: bytes, reply: Any, buffers: list[Any] | None = None
    ) -> None:
        """Send a reply from another thread through the loop."""
        frames = encode(reply, buffers or [], limits=self.limits)
        rid = getattr(reply, "rid", None)
        head = [REPLY, identity, b"" if rid is None else str(rid).encode()]
        self._push().send_multipart([*head, *frames], copy=False)

    def _push(self) -> zmq.Socket:
        sock = getattr(self._tls, "push", None)
        if sock is None:
            sock = self._ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._inproc)
            self._tls.push = sock
            with self._push_lock:
                self._pushes.append(sock)
        return sock


def _send(sock: zmq.Socket, frames: list[Any]) -> zmq.MessageTracker | None:
    """Send without blocking; a peer that is gone or full loses the message."""
    last = max(
        (i for i, f in enumerate(frames) if memoryview(f).nbytes >= TRACK_AT),
        default=-1,
    )
    tracker = None
    try:
        for index, frame in enumerate(frames):
            flags = zmq.NOBLOCK | (zmq.SNDMORE if index < len(frames) - 1 else 0)
            # A frame handed over from another thread is re-wrapped to track it.
            data = frame.buffer if isinstance(frame, zmq.Frame) else frame
            sent = sock.send(data, flags, copy=False, track=index == last)
            if index == last:
                tracker = sent
    except zmq.ZMQError as exc:  # EHOSTUNREACH (gone) or EAGAIN (HWM)
        log.debug("message dropped: %s", exc)
        return None
    return tracker
