"""A minimal protocol client on real sockets, for testing the server alone.

It speaks the wire protocol directly (DEALER + SUB and the sans-IO codec) so
server tests do not depend on the kernel-side client's own logic.
"""

from __future__ import annotations

import itertools
from typing import Any

import zmq

from openhcs_nb.protocol import (
    Fetch,
    Finished,
    decode_event_frames,
    decode_server,
    encode,
    event_topic,
)


class RawClient:
    def __init__(self, address: str, event_address: str | None = None, *, keys=None):
        self.ctx = zmq.Context()
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.sub = None
        if keys is not None:
            server_public, public, secret = keys
            for sock in (self.dealer,):
                sock.curve_serverkey = server_public
                sock.curve_publickey = public
                sock.curve_secretkey = secret
        self.dealer.connect(address)
        if event_address:
            self.sub = self.ctx.socket(zmq.SUB)
            self.sub.setsockopt(zmq.LINGER, 0)
            self.sub.connect(event_address)
        self._rids = itertools.count(1)

    def rid(self) -> int:
        return next(self._rids)

    def send_frames(self, frames: list[Any]) -> None:
        self.dealer.send_multipart(frames)

    def recv(self, timeout: float = 20.0):
        if not self.dealer.poll(int(timeout * 1000)):
            raise TimeoutError("no reply from the server")
        return decode_server(self.dealer.recv_multipart())

    def call(self, msg, timeout: float = 20.0):
        self.send_frames(encode(msg))
        reply, buffers = self.recv(timeout)
        assert reply.rid == msg.rid, (reply, msg)
        return reply, buffers

    def subscribe(self, execution_id: str = "", stream_key: str = "") -> None:
        """Ask for an execution's events (``""``: ask for every execution's)."""
        assert self.sub is not None
        topic = event_topic(execution_id, stream_key) if execution_id else b""
        self.sub.setsockopt(zmq.SUBSCRIBE, topic)

    def events(self, timeout: float = 30.0, until=Finished):
        """Live events until one of type ``until`` arrives (or timeout)."""
        assert self.sub is not None
        out = []
        while self.sub.poll(int(timeout * 1000)):
            event, buffers = decode_event_frames(self.sub.recv_multipart())
            out.append((event, buffers))
            if isinstance(event, until):
                return out
        raise TimeoutError(
            f"no {until.__name__} event; got {[type(e).__name__ for e, _ in out]}"
        )

    def fetch_all(self, execution_id: str, **options):
        """Every stored event of an execution, following ``last_seq``."""
        events, since = [], 0
        while True:
            reply, buffers = self.call(
                Fetch(
                    rid=self.rid(),
                    execution_id=execution_id,
                    since_seq=since,
                    **options,
                )
            )
            events.extend((e, reply, buffers) for e in reply.events)
            since = reply.events[-1].seq if reply.events else since
            if reply.complete or not reply.events:
                return events, reply

    def close(self) -> None:
        self.ctx.destroy(linger=0)
