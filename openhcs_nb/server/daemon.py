"""The execution server: sockets, the event loop, start-up and shutdown.

One thread (the caller of :meth:`Server.serve_forever`) owns every socket: the
ROUTER for commands, the XPUB for events, their monitors, and an inproc PULL on
which other threads (dispatchers, the compile pool) hand it work. Nothing else
touches a socket, so ZeroMQ's one-thread-per-socket rule holds.

Rules the loop keeps for a server shared by users who do not trust each other:

- The identity of a command is the CurveZMQ user of its connection
  (:mod:`~openhcs_nb.server.peers`); connection state dies with the connection.
- Events reach only subscribers the owner authorised
  (:mod:`~openhcs_nb.server.subscriptions`).
- A user's commands are rate limited; loading and compiling code runs on a
  bounded thread pool, never on this thread.
- Outbound bytes are bounded per peer and for the event socket
  (:mod:`~openhcs_nb.server.outbox`); inbound frames are capped by libzmq
  (``MAXMSGSIZE``) and whole messages by the codec's limits.
- A client never sees a traceback: an unexpected failure is logged with an
  incident id, and the reply carries only that id.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.protocol import (
    Limits,
    ProtocolError,
    decode_client,
    error_reply,
)
from openhcs_nb.server._loop_replies import internal_reply, log_incident
from openhcs_nb.server._outbound import Outbound
from openhcs_nb.server.config import ServerConfig
from openhcs_nb.server.handlers import Handlers
from openhcs_nb.server.jobs import ExecutionTrigger, JobStore, StoredEvent
from openhcs_nb.server.key_watch import secure_sockets
from openhcs_nb.server.operations import Operations
from openhcs_nb.server.peers import (
    PeerTable,
    frame_origin,
    peer_name,
    shut_down_connection,
)
from openhcs_nb.server.rate_limit import RateLimiter, rate_bucket
from openhcs_nb.server.scheduler import Scheduler, SchedulerLimits
from openhcs_nb.server.subscriptions import decide
from openhcs_nb.server.well_executor import (
    WellExecutor,
    WellRunner,
    start_executor,
)
from openhcs_nb.server.worker_health import WorkerHealth

log = logging.getLogger(__name__)
_MIB = 1 << 20
_INPROC = "inproc://openhcs-loop-{}"
_BATCH = 64  # messages per socket per loop turn, so no socket starves another
_MONITORED = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED


class Server:
    """A running execution server; build with a config, then ``start()``."""

    def __init__(self, config: ServerConfig, *, omero_gateway: Any = None):
        """``omero_gateway`` builds OMERO gateways (default: omero-py's BlitzGateway).

        Tests pass their OMERO double here; the shipped daemon never does.
        """
        self.config = config
        self.omero_gateway = omero_gateway
        limits = config.limits
        self.limits = Limits(
            max_message_bytes=config.server.max_message_bytes,
        )
        self.command_limits = Limits(max_message_bytes=limits.max_command_bytes)
        self._stop = threading.Event()
        self._reload_keys = threading.Event()
        self.outbound = Outbound(self.limits, limits.peer_send_budget_bytes)
        self.outbox = self.outbound.outbox
        self._ctx: zmq.Context | None = None
        self._auth: Any = None
        self.keys: Any = None
        self.workers: list[WellRunner] = []
        self.executor = WellExecutor([])
        self.command_endpoint = ""
        self.event_endpoint = ""
        self.ops: Operations | None = None
        self.peers = PeerTable()
        self.rate = RateLimiter(limits.requests_per_second, limits.request_burst)
        self._event_fds: dict[int, tuple[str, int] | None] = {}
        self._command_fds: dict[int, tuple[str, int] | None] = {}

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Open the job store, bind the sockets, recover stored work, start workers.

        Raises
        ------
        ConfigError
            The configuration is unsafe (e.g. a public address without keys).
        JobStoreError
            The job store cannot be opened (corrupt, newer schema).
        zmq.ZMQError
            An address cannot be bound (port in use).
        """
        cfg = self.config
        cfg.validate()
        Path(cfg.results.root).mkdir(parents=True, exist_ok=True)
        self.store = JobStore(cfg.jobs_path)
        ctx = self._ctx = zmq.Context()
        self.router = ctx.socket(zmq.ROUTER)
        self.pub = ctx.socket(zmq.XPUB)
        self._auth, self.keys = secure_sockets(
            ctx, cfg.security, (self.router, self.pub)
        )
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.SNDHWM, cfg.server.send_hwm)
        self.router.setsockopt(zmq.RCVHWM, cfg.server.recv_hwm)
        # A frame a little over the limit is read and refused with too_large;
        # libzmq drops a peer whose frame is far larger (4x) before its payload
        # is read, so no such frame is ever buffered.
        self.router.setsockopt(zmq.MAXMSGSIZE, 4 * cfg.limits.max_command_bytes)
        self.router.setsockopt(zmq.LINGER, 0)
        # Subscriptions are decided here, per subscriber (see subscriptions.py).
        self.pub.setsockopt(zmq.XPUB_MANUAL, 1)
        self.pub.setsockopt(zmq.SNDHWM, cfg.limits.event_hwm)
        self.pub.setsockopt(zmq.MAXMSGSIZE, 4096)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.router_monitor = self.router.get_monitor_socket(_MONITORED)
        self.pub_monitor = self.pub.get_monitor_socket(_MONITORED)
        self.router.bind(cfg.server.command_address)
        self.pub.bind(cfg.server.event_address)
        self.command_endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.event_endpoint = self.pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self._inproc = _INPROC.format(id(self))
        self.pull = ctx.socket(zmq.PULL)
        self.pull.bind(self._inproc)
        self.outbound.bind(ctx, self._inproc, self.router, self.pub, self.store)
        self.executor = start_executor(
            cfg.execution, cfg.limits.worker_memory_mib * _MIB or None
        )
        self.workers = list(self.executor.runners)
        self.scheduler = Scheduler(
            self.store,
            self.workers,
            cfg.execution.max_concurrent_executions,
            self.publish,
            SchedulerLimits.from_config(
                cfg.limits, timeout_grace_s=cfg.execution.cancel_grace_s
            ),
        )
        self.handlers = Handlers(self, cfg)
        self.ops = Operations(cfg, self.store, self.worker_health)
        self.ops.start()
        self.outbound.loop_thread = threading.current_thread()
        self.handlers.resume(self.store.recover_after_restart())
        self.scheduler.start()
        log.info(
            "ready: commands %s, events %s", self.command_endpoint, self.event_endpoint
        )

    @property
    def curve(self) -> bool:
        """Whether clients are authenticated by CurveZMQ keys."""
        return self._auth is not None

    def request_stop(self, *_: object) -> None:
        """Ask the loop to stop (safe to call from a signal handler)."""
        self._stop.set()

    def request_key_reload(self, *_: object) -> None:
        """Ask the loop to re-read ``authorized_keys`` (SIGHUP; signal-safe)."""
        self._reload_keys.set()

    def serve_forever(self, install_signals: bool = True) -> None:
        """Serve until SIGTERM/SIGINT or :meth:`request_stop`, then shut down."""
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            signal.signal(signal.SIGHUP, self.request_key_reload)
        self.outbound.loop_thread = threading.current_thread()
        poller = zmq.Poller()
        for sock in (
            self.router_monitor,
            self.pub_monitor,
            self.pull,
            self.router,
            self.pub,
        ):
            poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                try:
                    self._turn(dict(poller.poll(200)))
                except Exception as exc:  # one bad turn must not stop the server
                    log_incident(exc, "a turn of the command loop")
        finally:
            self.shutdown()

    def _turn(self, ready: dict[Any, int]) -> None:
        # Disconnects first: a connection that reused a routing id must never
        # find the state of the one that left.
        self._drain_monitors()
        if self.pull in ready:
            self._drain_pull()
        if self.router in ready:
            self._drain_router()
        if self.pub in ready:
            self._drain_subscriptions()
        self._housekeeping()

    def shutdown(self) -> None:
        """Interrupt running wells (kept for resumption), stop workers, close."""
        if self._ctx is None:
            return
        self.scheduler.stop(self.config.execution.cancel_grace_s)
        self.handlers.close()
        for execution_id in self.scheduler.active_ids():
            record = self.store.get_execution(execution_id)
            if record is not None and record.state.name == "RUNNING":
                self.store.set_execution_state(execution_id, ExecutionTrigger.INTERRUPT)
        for worker in self.workers:
            worker.stop(timeout=2)
        self.executor.close()
        if self.ops is not None:
            self.ops.close()
        self.store.close()
        if self._auth is not None:
            self._auth.stop()
        self._ctx.destroy(linger=0)
        self._ctx = None
        log.info("stopped")

    # -- the loop ----------------------------------------------------------------

    def _housekeeping(self) -> None:
        self.outbox.sweep()
        if self.ops is not None:
            self.ops.tick()
        if self.keys is None:
            return
        removed = self.keys.poll(force=self._reload_keys.is_set())
        self._reload_keys.clear()
        if removed:
            self._cut_off(removed)

    def _cut_off(self, users: set[str]) -> None:
        """Close every connection of revoked users; subscribers reconnect anew."""
        for peer in self.peers.of_users(users):
            shut_down_connection(peer.fd, self._command_fds.get(peer.fd))
            self.handlers.audit_peer(peer, "revoke", "closed", "key removed")
        # Subscriptions carry no descriptor: close every event connection;
        # clients reconnect at once, and ZAP refuses the revoked keys.
        for fd, expected in list(self._event_fds.items()):
            shut_down_connection(fd, expected)

    def _drain_monitors(self) -> None:
        for monitor, fds in (
            (self.router_monitor, self._command_fds),
            (self.pub_monitor, self._event_fds),
        ):
            for _ in range(_BATCH):
                try:
                    change = recv_monitor_message(monitor, zmq.NOBLOCK)
                except zmq.Again:
                    break
                fd = int(change["value"])
                if change["event"] == zmq.EVENT_ACCEPTED:
                    fds[fd] = peer_name(fd)
                    continue
                fds.pop(fd, None)
                if monitor is self.router_monitor:
                    for peer in self.peers.disconnected(fd):
                        self.outbox.forget(peer.routing_id)
                        self.handlers.connection_closed(peer)

    def _drain_pull(self) -> None:
        for _ in range(_BATCH * 4):
            try:
                frames = self.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.outbound.handed_over(frames)

    def _drain_router(self) -> None:
        for _ in range(_BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            identity, body = frames[0].bytes, frames[1:]
            if not body:
                continue
            local = self.handlers.local_user if self._auth is None else None
            user, fd, address = frame_origin(body[0], local)
            if self.keys is not None and user not in self.keys.users:
                shut_down_connection(fd, self._command_fds.get(fd))
                continue  # revoked while connected: nothing more is served
            peer = self.peers.seen(identity, user, fd, address)
            self._handle(peer, body)

    def _drain_subscriptions(self) -> None:
        for _ in range(_BATCH):
            try:
                frame = self.pub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            user = None
            if self._auth is not None:
                try:
                    user = frame.get("User-Id")
                except zmq.ZMQError:
                    user = None
            decision = decide(
                frame.bytes,
                user,
                self.store,
                curve=self.curve,
                frontends=frozenset(self.config.web.frontends),
            )
            if decision.action == "unsubscribe":
                self.pub.setsockopt(zmq.UNSUBSCRIBE, decision.topic)
            elif decision.allowed:
                self.pub.setsockopt(zmq.SUBSCRIBE, decision.topic)
            if decision.action == "subscribe":
                self.handlers.audit_subscription(user, decision)

    def _handle(self, peer: Any, frames: list[Any]) -> None:
        bucket = rate_bucket(peer, self.config.web.frontends)
        wait = self.rate.take(bucket)
        if wait and self.rate.flooding(bucket):
            self.handlers.audit.rate_limited(peer, "flood")
            return  # past the burst of refusals: not even an answer
        try:
            msg, buffers = decode_client(frames, limits=self.command_limits)
        except ProtocolError as exc:
            self.handlers.audit_peer(peer, "malformed", "refused", str(exc))
            self.send_reply(peer.routing_id, error_reply(exc))
            return
        if wait:
            self.send_reply(
                peer.routing_id, self.handlers.rate_limited(peer, msg, wait)
            )
            return
        try:
            out = self.handlers.handle(msg, buffers, peer)
        except OpenHCSError as exc:
            self.handlers.audit_refusal(peer, msg, exc)
            self.send_reply(peer.routing_id, error_reply(exc, msg.rid))
            return
        except Exception as exc:
            incident = log_incident(exc, f"{type(msg).__name__} from {peer.label}")
            self.handlers.audit_peer(peer, type(msg).__name__, "internal", incident)
            self.send_reply(peer.routing_id, internal_reply(msg.rid, incident))
            return
        if out is not None:
            reply, reply_buffers = out
            try:
                self.send_reply(peer.routing_id, reply, reply_buffers)
            except ProtocolError as exc:  # e.g. a reply over the size limit
                self.send_reply(peer.routing_id, error_reply(exc, msg.rid))

    # -- sending: see _outbound.py ---------------------------------------------------

    def send_reply(
        self, identity: bytes, reply: Any, buffers: list[Any] | None = None
    ) -> None:
        """Send a reply now; only the loop thread may call this."""
        self.outbound.send_reply(identity, reply, buffers)

    def publish(self, stored: StoredEvent) -> None:
        """Publish a stored event (any thread); it is durable already."""
        self.outbound.publish(stored)
        if self.ops is not None:
            self.ops.observe(stored)

    def worker_health(self) -> list[WorkerHealth]:
        """Each runner's health, for metrics (runners that can tell)."""
        return [r.health() for r in self.workers if hasattr(r, "health")]

    def reply_later(
        self, identity: bytes, reply: Any, buffers: list[Any] | None = None
    ) -> None:
        """Send a reply from another thread through the loop."""
        self.outbound.reply_later(identity, reply, buffers)
