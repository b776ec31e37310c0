"""The misbehaving user of ``bench_shared_server.py``, on raw ZeroMQ sockets."""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from multiuser import Users

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.protocol import (
    ErrorReply,
    Fetch,
    Hello,
    ListExecutions,
    Status,
    Submit,
    decode_event_frames,
    decode_server,
    encode,
    event_topic,
)

WORKERS = 2
PLATE = "shared.ome.zarr"
ATTACKER = "mallory"
MIB = 1 << 20


# --- the attacker ------------------------------------------------------------------


@dataclass
class Attack:
    own: set[str] = field(default_factory=set)
    own_keys: dict[str, str] = field(default_factory=dict)  # id -> stream key
    heard: Counter[str] = field(default_factory=Counter)  # read, by execution
    unread: Counter[str] = field(default_factory=Counter)  # left on the deaf SUB
    flooded: int = 0
    flood_refused: int = 0
    flood_replies: Counter[str] = field(default_factory=Counter)
    fetches_unread: int = 0
    fetches_refused: int = 0
    huge: list[str] = field(default_factory=list)
    multipart: str = "not sent"
    others_answered: int = 0
    others_asked: int = 0
    others_refused: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    finished: bool = False

    def others(self, leaked: Sequence[str] = ()) -> list[str]:
        """Executions not its own that it heard of (or whose ids leaked)."""
        return sorted((set(self.heard) | set(leaked)) - self.own)

    def count(self, events: Counter[str]) -> int:
        """Events of executions not its own."""
        return sum(n for ex, n in events.items() if ex not in self.own)


def outcome(reply: object, accepted: str) -> str:
    """How the server answered: nothing, a refusal (code and why), or ``accepted``."""
    if reply is None:
        return "no reply"
    if isinstance(reply, ErrorReply):
        return f"{reply.code} ({reply.message[:60]})"
    return accepted


def topic_of(execution_id: str, stream_key: str) -> bytes:
    """The event topic, with the stream key where the server hands one out."""
    if stream_key:
        return event_topic(execution_id, stream_key)
    return event_topic(execution_id)


class Attacker:
    """A user who speaks the protocol on raw sockets and ignores every rule."""

    def __init__(
        self,
        address: str,
        events: str,
        users: Users,
        stop: threading.Event,
        mark: Callable[[str], None] = lambda _phase: None,
        leaked: list[tuple[str, str]] | None = None,
    ):
        # others' (execution id, stream key), appended as they leak
        self.leaked = [] if leaked is None else leaked
        self.address, self.events_address = address, events
        self.mark = mark
        self.keys = users.raw_keys(ATTACKER)
        self.stop = stop
        self.quiet = threading.Event()  # set: the flood holds off for a while
        self.result = Attack()
        self.ctx = zmq.Context()
        self._rids = itertools.count(1)

    def socket(self, kind: int) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.linger = 0
        server_public, public, secret = self.keys
        sock.curve_serverkey = server_public
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        return sock

    def call(self, sock: zmq.Socket, msg, timeout: float = 20.0):
        """Send ``msg`` and read replies until ours (others are dropped)."""
        sock.send_multipart(encode(msg))
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000)):
                break
            reply, _ = decode_server(sock.recv_multipart())
            if reply.rid == msg.rid:
                return reply
        return None

    def rid(self) -> int:
        return next(self._rids)

    def spy(self, sub: zmq.Socket) -> None:
        """Read every event the server lets this user see; count others'.

        Besides ``b""`` it subscribes to the exact topic of every execution
        that leaked, with its stream key (ids show in notebooks and logs), so a
        server that filters only by topic gives those events away too; and to
        its own, which shows the socket does receive what it may.
        """
        subscribed = 0
        own: set[str] = set()
        while not self.stop.is_set():
            for execution_id, key in self.leaked[subscribed:]:
                sub.subscribe(topic_of(execution_id, key))
                subscribed += 1
            for execution_id in set(self.result.own) - own:  # proves the link works
                key = self.result.own_keys.get(execution_id, "")
                sub.subscribe(topic_of(execution_id, key))
                own.add(execution_id)
            if not sub.poll(100):
                continue
            try:
                event, _ = decode_event_frames(sub.recv_multipart())
            except Exception:
                continue
            self.result.heard.update([event.execution_id])

    def run(self, limit_s: float) -> Attack:
        end = time.monotonic() + limit_s
        res = self.result
        spy = self.socket(zmq.SUB)
        deaf = self.socket(zmq.SUB)  # subscribed to everything, never read
        for sub in (spy, deaf):
            sub.subscribe(b"")
            sub.connect(self.events_address)
        talk = self.socket(zmq.DEALER)  # commands whose replies it reads
        talk.connect(self.address)
        deaf_dealer = self.socket(zmq.DEALER)  # requests whose replies it never reads
        deaf_dealer.connect(self.address)
        reader = threading.Thread(target=self.spy, args=(spy,), daemon=True)
        flooder = threading.Thread(target=self.keep_flooding, args=(end,), daemon=True)
        reader.start()
        flooder.start()
        try:
            self._attack(talk, deaf_dealer, end)
        except Exception as exc:
            res.errors.append(f"{type(exc).__name__}: {exc}")
        self.mark("flood until the end")
        self.stop.wait(max(0.0, end - time.monotonic()))
        self.mark("done")
        self.stop.set()
        reader.join(5)
        flooder.join(5)
        while deaf.poll(0):
            with contextlib.suppress(Exception):
                event, _ = decode_event_frames(deaf.recv_multipart())
                res.unread.update([event.execution_id])
        self.ctx.destroy(linger=0)
        res.finished = True
        return res

    def keep_flooding(self, end: float, burst: int = 4000, total: int = 40_000) -> None:
        """Commands as fast as its socket takes them, never read, all along.

        One burst of ``burst`` first, then 200 every 50 ms, until the honest
        users are done, ``end``, or ``total`` commands.
        """
        res = self.result
        sock = self.socket(zmq.DEALER)
        sock.connect(self.address)
        count = burst
        while res.flooded + res.flood_refused < total and time.monotonic() < end:
            own = next(iter(set(res.own)), "ex-nothing")
            for i in range(count):
                msg = (
                    ListExecutions(rid=self.rid())
                    if i % 2
                    else Status(rid=self.rid(), execution_id=own)
                )
                try:
                    sock.send_multipart(encode(msg), flags=zmq.NOBLOCK)
                    res.flooded += 1
                except zmq.Again:
                    res.flood_refused += 1
            count = 200
            if self.stop.wait(0.05):
                break
            while self.quiet.is_set() and not self.stop.wait(0.05):
                pass  # a phase that must get past the rate limit is running
        # only now, with the attack over, look at what came back (bounded)
        drain_until = time.monotonic() + 3.0
        while time.monotonic() < drain_until and sock.poll(200):
            with contextlib.suppress(Exception):
                reply, _ = decode_server(sock.recv_multipart())
                code = reply.code if isinstance(reply, ErrorReply) else "answered"
                res.flood_replies.update([code])
        sock.close(0)

    def _attack(self, talk: zmq.Socket, deaf: zmq.Socket, end: float) -> None:
        """Each phase in turn; one that fails is reported and the next goes on."""
        code = nuclei_count_pipeline().to_code()
        phases: tuple[tuple[str, Callable[[], None]], ...] = (
            ("own run", lambda: self._own_run(talk, code)),
            (
                "many-frame message",
                lambda: self._multipart(
                    Status(rid=self.rid(), execution_id="ex-x"), 100, 8 * MIB
                ),
            ),
            ("huge code", lambda: self._huge_code(talk, code, end)),
            ("unread full-resolution fetches", lambda: self._fetch_unread(talk, deaf)),
            ("others' executions", lambda: self._others(talk, end)),
        )
        for name, phase in phases:
            if time.monotonic() > end:
                break
            self.mark(name)
            began = time.perf_counter()
            try:
                phase()
            except Exception as exc:
                self.result.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
            self.result.phases.append(f"{name} {time.perf_counter() - began:.1f} s")

    def _own_run(self, talk: zmq.Socket, code: str) -> None:
        """Say hello and submit one honest-looking run of its own (whole plate)."""
        res = self.result
        if self.call(talk, Hello(rid=self.rid(), client=ATTACKER)) is None:
            res.errors.append("no reply to Hello")
        msg = Submit(rid=self.rid(), pipeline_code=code, plate=PLATE, wells=None)
        submitted = self.call(talk, msg)
        if submitted is not None and not isinstance(submitted, ErrorReply):
            res.own.add(submitted.execution_id)
            res.own_keys[submitted.execution_id] = getattr(submitted, "stream_key", "")
        else:
            res.errors.append(f"own submit: {submitted!r}"[:200])

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        """Hold the flood off so the next requests fit the user's rate limit.

        Each attack should meet the defence meant for it, not the rate limit
        that the flood has already tripped.
        """
        self.quiet.set()
        time.sleep(3.0)  # the server works off the queued flood; the budget refills
        try:
            yield
        finally:
            self.quiet.clear()

    def _huge_code(self, talk: zmq.Socket, code: str, end: float) -> None:
        """Pipeline code of several MB: a comment, a literal of 1M items, a name."""
        with self.quietly():
            self._huge_code_quietly(talk, code, end)

    def _huge_code_quietly(self, talk: zmq.Socket, code: str, end: float) -> None:
        res = self.result
        for label, text in (
            ("6 MB comment", code + ("# " + "x" * 98 + "\n") * 60_000),
            ("3 MB literal", code + "\nJUNK = [" + "0, " * 1_000_000 + "]\n"),
            ("5 MB name", code.replace('"nuclei"', '"' + "n" * 5 * MIB + '"', 1)),
        ):
            if time.monotonic() > end:
                break
            msg = Submit(rid=self.rid(), pipeline_code=text, plate=PLATE, wells=["A01"])
            began = time.perf_counter()
            try:
                reply = self.call(talk, msg, timeout=5.0)
            except Exception as exc:
                res.huge.append(f"{label}: {type(exc).__name__}")
                continue
            took = time.perf_counter() - began
            res.huge.append(f"{label}: {outcome(reply, 'accepted')} in {took:.1f} s")
            if reply is not None and not isinstance(reply, ErrorReply):
                res.own.add(reply.execution_id)
                res.own_keys[reply.execution_id] = getattr(reply, "stream_key", "")
            time.sleep(0.5)

    def _fetch_unread(self, talk: zmq.Socket, deaf: zmq.Socket) -> None:
        """Once its own run is over, 200 full-resolution fetches, never read.

        They go at 25 a second, with the flood held off, so that a rate limit
        does not answer them instead of the full-resolution reader.
        """
        with self.quietly():
            self._fetch_unread_quietly(talk, deaf)

    def _fetch_unread_quietly(self, talk: zmq.Socket, deaf: zmq.Socket) -> None:
        res = self.result
        own = next(iter(res.own), None)
        wait_until = time.monotonic() + 60.0
        while own and time.monotonic() < wait_until:
            reply = self.call(talk, Status(rid=self.rid(), execution_id=own), 10.0)
            if reply is None or isinstance(reply, ErrorReply):
                break
            if reply.execution.state in ("finished", "done", "failed", "cancelled"):
                break
            time.sleep(0.5)
        time.sleep(1.0)
        for _ in range(200 if own else 0):
            msg = Fetch(rid=self.rid(), execution_id=own, full_resolution=True)
            try:
                deaf.send_multipart(encode(msg), flags=zmq.NOBLOCK)
                res.fetches_unread += 1
            except zmq.Again:
                res.fetches_refused += 1
            time.sleep(1 / 25)

    def _others(self, talk: zmq.Socket, end: float) -> None:
        """Status and Fetch of other users' executions, by ids their events gave."""
        res = self.result
        with self.quietly():
            for other in res.others([ex for ex, _ in self.leaked])[:20]:
                if time.monotonic() > end:
                    break
                for msg in (
                    Status(rid=self.rid(), execution_id=other),
                    Fetch(rid=self.rid(), execution_id=other),
                ):
                    res.others_asked += 1
                    reply = self.call(talk, msg, timeout=10.0)
                    if reply is None or isinstance(reply, ErrorReply):
                        res.others_refused.update([outcome(reply, "").split(" (")[0]])
                    else:
                        res.others_answered += 1
                    time.sleep(1 / 25)

    def _multipart(self, head, frames: int, size: int) -> None:
        sock = self.socket(zmq.DEALER)
        sock.setsockopt(zmq.SNDTIMEO, 20_000)
        sock.connect(self.address)
        blob = memoryview(bytes(size))
        began = time.perf_counter()
        try:
            sock.send_multipart([*encode(head), *[blob] * (frames - 1)], copy=False)
            answered = sock.poll(15_000)
            reply = decode_server(sock.recv_multipart())[0] if answered else None
            what = outcome(reply, type(reply).__name__)
        except zmq.Again:
            what = "send timed out"
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}"[:80]
        took = time.perf_counter() - began
        self.result.multipart = f"{frames} x {size // MIB} MB: {what} in {took:.1f} s"
        sock.close(0)


# --- the benchmark -------------------------------------------------------------------
