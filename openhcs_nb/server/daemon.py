"""The execution server: sockets, the event loop, start-up and shutdown.

One thread (the caller of :meth:`Server.serve_forever`) owns every socket: the
ROUTER for commands, the PUB for events and an inproc PULL on which the
dispatcher threads hand it finished work. Nothing else touches a socket, so
ZeroMQ's one-thread-per-socket rule holds. Dispatcher threads get a private
PUSH socket each (created in that thread) to reach the loop.

Commands are decoded by the sans-IO protocol package and answered by
:class:`~openhcs_nb.server.handlers.Handlers`; a bad message earns its sender an
``ErrorReply`` and the loop carries on serving everyone else.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
from pathlib import Path
from typing import Any

import zmq

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.protocol import (
    Limits,
    ProtocolError,
    decode_client,
    encode,
    error_reply,
)
from openhcs_nb.server.config import ServerConfig
from openhcs_nb.server.handlers import Handlers
from openhcs_nb.server.jobs import ExecutionTrigger, JobStore, StoredEvent
from openhcs_nb.server.scheduler import Scheduler
from openhcs_nb.server.workers import Worker, start_workers

log = logging.getLogger(__name__)
_INPROC = "inproc://openhcs-loop-{}"
_PUB, _REPLY = b"pub", b"reply"
_BATCH = 64  # messages per socket per loop turn, so no socket starves another


class Server:
    """A running execution server; build with a config, then ``start()``."""

    def __init__(self, config: ServerConfig, *, omero_gateway: Any = None):
        """``omero_gateway`` builds OMERO gateways (default: omero-py's BlitzGateway).

        Tests pass their OMERO double here; the shipped daemon never does.
        """
        self.config = config
        self.omero_gateway = omero_gateway
        self.limits = Limits(max_message_bytes=config.server.max_message_bytes)
        self._stop = threading.Event()
        self._tls = threading.local()
        self._push_lock = threading.Lock()
        self._pushes: list[zmq.Socket] = []
        self._ctx: zmq.Context | None = None
        self._auth: Any = None
        self.workers: list[Worker] = []
        self.command_endpoint = ""
        self.event_endpoint = ""
        self._loop_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Bind the sockets, recover stored work and start the workers.

        Raises
        ------
        ConfigError
            The configuration is unsafe (e.g. a public address without keys).
        zmq.ZMQError
            An address cannot be bound (port in use).
        """
        cfg = self.config
        cfg.validate()
        root = Path(cfg.results.root)
        root.mkdir(parents=True, exist_ok=True)
        ctx = self._ctx = zmq.Context()
        self.router = ctx.socket(zmq.ROUTER)
        self.pub = ctx.socket(zmq.PUB)
        self._secure(ctx)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.router.setsockopt(zmq.SNDHWM, cfg.server.send_hwm)
        self.router.setsockopt(zmq.RCVHWM, cfg.server.recv_hwm)
        self.router.setsockopt(zmq.MAXMSGSIZE, cfg.server.max_message_bytes)
        self.router.setsockopt(zmq.LINGER, 0)
        # Subscribers that fall behind drop events; they backfill with Fetch.
        self.pub.setsockopt(zmq.SNDHWM, max(cfg.server.send_hwm, 100_000))
        self.pub.setsockopt(zmq.LINGER, 0)
        self.router.bind(cfg.server.command_address)
        self.pub.bind(cfg.server.event_address)
        self.command_endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.event_endpoint = self.pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self._inproc = _INPROC.format(id(self))
        self.pull = ctx.socket(zmq.PULL)
        self.pull.bind(self._inproc)
        self.store = JobStore(cfg.jobs_path)
        self.workers = start_workers(
            cfg.execution.workers, [str(g) for g in cfg.execution.gpus]
        )
        self.scheduler = Scheduler(
            self.store,
            self.workers,
            cfg.execution.max_concurrent_executions,
            self.publish,
        )
        self.handlers = Handlers(self, cfg)
        self._loop_thread = threading.current_thread()
        self.handlers.resume(self.store.recover_after_restart())
        self.scheduler.start()
        log.info(
            "ready: commands %s, events %s", self.command_endpoint, self.event_endpoint
        )

    def _secure(self, ctx: zmq.Context) -> None:
        sec = self.config.security
        if sec.server_secret_key is None:
            return
        from openhcs_nb.server.keys import (
            AuthorizedKeys,
            configure_server_socket,
            load_keypair,
            start_authenticator,
        )

        keypair = load_keypair(sec.server_secret_key)
        authorized = (
            AuthorizedKeys.load(sec.authorized_keys) if sec.authorized_keys else None
        )
        if authorized is None:
            raise OpenHCSError(
                "curve needs an authorized_keys file listing client keys"
            )
        self._auth = start_authenticator(ctx, authorized)
        configure_server_socket(self.router, keypair)
        configure_server_socket(self.pub, keypair)

    def request_stop(self, *_: object) -> None:
        """Ask the loop to stop (safe to call from a signal handler)."""
        self._stop.set()

    def serve_forever(self, install_signals: bool = True) -> None:
        """Serve until SIGTERM/SIGINT or :meth:`request_stop`, then shut down."""
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self._loop_thread = threading.current_thread()
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.pull, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(200))
                if self.pull in ready:
                    self._drain_pull()
                if self.router in ready:
                    self._drain_router()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Interrupt running wells (kept for resumption), stop workers, close."""
        if self._ctx is None:
            return
        self.scheduler.stop(self.config.execution.cancel_grace_s)
        for execution_id in self.scheduler.active_ids():
            record = self.store.get_execution(execution_id)
            if record is not None and record.state.name == "RUNNING":
                self.store.set_execution_state(execution_id, ExecutionTrigger.INTERRUPT)
        for worker in self.workers:
            worker.stop(timeout=2)
        if self.handlers.omero is not None:
            self.handlers.omero.close()
        self.store.close()
        if self._auth is not None:
            self._auth.stop()
        self._ctx.destroy(linger=0)
        self._ctx = None
        log.info("stopped")

    # -- the loop ----------------------------------------------------------------

    def _drain_pull(self) -> None:
        for _ in range(_BATCH * 4):
            try:
                frames = self.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            kind = frames[0].bytes
            if kind == _PUB:
                self.pub.send_multipart(frames[1:], copy=False)
            elif kind == _REPLY:
                self.router.send_multipart(frames[1:], copy=False)

    def _drain_router(self) -> None:
        for _ in range(_BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            identity, body = frames[0], frames[1:]
            user = self._user_of(body[0]) if body else "anonymous"
            self._handle(identity.bytes, user, body)

    def _user_of(self, frame: zmq.Frame) -> str:
        if self._auth is None:
            return os.environ.get("OPENHCS_NB_LOCAL_USER", "local")
        try:
            return frame.get("User-Id") or "anonymous"
        except zmq.ZMQError:
            return "anonymous"

    def _handle(self, identity: bytes, user: str, frames: list[Any]) -> None:
        try:
            msg, buffers = decode_client(frames, limits=self.limits)
        except ProtocolError as exc:
            log.info("refused a message from %s: %s", user, exc)
            self.send_reply(identity, error_reply(exc))
            return
        try:
            out = self.handlers.handle(msg, buffers, user, identity)
        except OpenHCSError as exc:
            self.send_reply(identity, error_reply(exc, msg.rid))
            return
        except Exception as exc:
            log.exception("command %s from %s failed", type(msg).__name__, user)
            self.send_reply(
                identity, error_reply(exc, msg.rid, traceback=traceback.format_exc())
            )
            return
        if out is not None:
            reply, reply_buffers = out
            try:
                self.send_reply(identity, reply, reply_buffers)
            except ProtocolError as exc:  # e.g. a reply over the size limit
                self.send_reply(identity, error_reply(exc, msg.rid))

    # -- sending (loop thread) ------------------------------------------------------

    def send_reply(
        self, identity: bytes, reply: Any, buffers: list[Any] | None = None
    ) -> None:
        """Send a reply now; only the loop thread may call this."""
        frames = encode(reply, buffers or [], limits=self.limits)
        self.router.send_multipart([identity, *frames], copy=False)

    # -- hand-over from other threads -------------------------------------------------

    def _push(self) -> zmq.Socket:
        sock = getattr(self._tls, "push", None)
        if sock is None:
            assert self._ctx is not None
            sock = self._ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._inproc)
            self._tls.push = sock
            with self._push_lock:
                self._pushes.append(sock)
        return sock

    def publish(self, stored: StoredEvent) -> None:
        """Publish a stored event (any thread); it is durable already."""
        from openhcs_nb.server._events import frames_of

        if threading.current_thread() is self._loop_thread:
            self.pub.send_multipart(frames_of(stored), copy=False)
            return
        self._push().send_multipart([_PUB, *frames_of(stored)], copy=False)

    def reply_later(
        self, identity: bytes, reply: Any, buffers: list[Any] | None = None
    ) -> None:
        """Send a reply from a worker thread through the loop."""
        frames = encode(reply, buffers or [], limits=self.limits)
        self._push().send_multipart([_REPLY, identity, *frames], copy=False)
