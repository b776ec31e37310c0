"""A shared server under load: honest users next to one who misbehaves.

Run: python benchmarks/bench_shared_server.py [--users 20] [--wells 2] [--no-attacker]

One real ``openhcs-server`` process on loopback, CurveZMQ on, one key per user
(``tests/multiuser.py``), a small synthetic OME-Zarr plate, 2 workers.

- ``users - 1`` honest users, one thread and one ``openhcs_nb.connect`` each:
  two previews, one submit of ``default_pipeline()`` on ``--wells`` wells,
  ``status`` / ``executions`` now and then (each call timed), then the result.
- One attacker on raw ZeroMQ sockets, with its own key: floods commands all
  along without reading the replies (a burst of 4000, then 200 every 50 ms),
  submits pipeline code of several MB and one message of 100 frames of 8 MB,
  sends 300 full-resolution fetches it never reads, asks for other users'
  executions, and subscribes to every event (``b""``, and the exact topics of
  other users' runs, as if their ids and stream keys had leaked) on two SUB
  sockets: one read, to count other users' events, one never read. Every loop
  is bounded in count and time; the attacker stops by itself.

Printed, one line each: honest runs complete with each well exactly once;
honest command latency p50 / p99; the server's peak RSS alone and with its
workers; events of others the attacker received (goal 0); a lone user's run
time ÷ the same run under load (the lone run comes first, on the idle server).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import psutil
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from multiuser import Users, make_users

from openhcs_nb import connect, default_pipeline
from openhcs_nb.client import RemoteBusy
from openhcs_nb.errors import OpenHCSError
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate
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
from openhcs_nb.server.local import LocalServer

WORKERS = 2
PLATE = "shared.ome.zarr"
ATTACKER = "mallory"
MIB = 1 << 20
T = TypeVar("T")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# --- the server ---------------------------------------------------------------


def make_plate(root: Path, wells: int, size: int) -> None:
    columns = max(3, -(-wells // 2))
    spec = SyntheticPlateSpec(
        rows=2,
        columns=columns,
        fields=1,
        channels=("DAPI", "GFP"),
        shape=(size, size),
        seed=7,
        min_nuclei=4,
        max_nuclei=12,
    )
    generate_plate(spec, root / PLATE, format="ome-zarr")


def write_config(base: Path, plates: Path, users: Users, concurrent: int) -> Path:
    path = base / "server.toml"
    path.write_text(
        f"""
[server]
command_address = "tcp://127.0.0.1:0"
event_address = "tcp://127.0.0.1:0"

[plates]
roots = ["{plates}"]

[results]
root = "{base / "results"}"

[execution]
workers = {WORKERS}
max_concurrent_executions = {concurrent}

{users.security_toml}"""
    )
    return path


class RssSampler(threading.Thread):
    """Peak RSS of the server alone and with its children, every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.proc = psutil.Process(pid)
        self.stop = threading.Event()
        self.peak_server = 0
        self.peak_total = 0
        self.samples = 0
        self.phase = "start"  # what was going on; set by the benchmark
        self.peak_phase = ""
        self.peaks: dict[str, int] = {}  # phase -> the server's peak RSS in it

    def sample(self) -> tuple[int, int]:
        server = self.proc.memory_info().rss
        total = server
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return server, total

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                server, total = self.sample()
            except psutil.Error:
                return
            if server > self.peak_server:
                self.peak_server, self.peak_phase = server, self.phase
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), server)
            self.peak_total = max(self.peak_total, total)
            self.samples += 1


# --- honest users ---------------------------------------------------------------


@dataclass
class Honest:
    name: str
    wells: list[str]
    ok: bool = False
    run_s: float = float("nan")
    state: str = ""
    arrivals: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    previews_ok: int = 0
    preview_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    busy: int = 0  # "busy, retry later" refusals, each retried


def patient(me: Honest, call: Callable[[], T], deadline: float) -> T:
    """``call()``, retried as the server asks while it answers busy."""
    while True:
        try:
            return call()
        except RemoteBusy as exc:
            me.busy += 1
            wait = exc.retry_after or random.uniform(0.2, 1.0)
            if time.monotonic() + wait > deadline:
                raise
            time.sleep(wait)


def timed(me: Honest, *calls: Callable[[], object]) -> None:
    """Make each call, recording its latency (or its error); busy is not an error."""
    for call in calls:
        began = time.perf_counter()
        try:
            call()
            me.latencies.append(time.perf_counter() - began)
        except RemoteBusy:
            me.busy += 1
        except Exception as exc:
            me.errors.append(f"command: {type(exc).__name__}: {exc}")


def honest_user(
    address: str,
    users: Users,
    me: Honest,
    *,
    previews: int,
    deadline: float,
    start: threading.Barrier | None = None,
    leak: list[tuple[str, str]] | None = None,
) -> Honest:
    """One notebook user: previews, one run, status now and then, the result."""
    pipeline = default_pipeline()
    rng = random.Random(me.name)
    conn = None
    try:
        if start is not None:
            start.wait(60.0)
        conn = connect(address, **users.connect_args(me.name), timeout=30.0)
        timed(me, conn.plates, conn.executions)
        for i in range(previews):
            began = time.perf_counter()
            try:
                well = me.wells[i % len(me.wells)]
                patient(
                    me,
                    partial(
                        conn.preview, pipeline, PLATE, well, 1 + i % 2, max_size=128
                    ),
                    deadline,
                )
                me.previews_ok += 1
                me.preview_s.append(time.perf_counter() - began)
            except Exception as exc:
                me.errors.append(f"preview: {type(exc).__name__}: {exc}")
        began = time.perf_counter()
        run = patient(
            me, lambda: conn.submit(pipeline, PLATE, wells=me.wells), deadline
        )
        run.on_well(lambda w: me.arrivals.update([w.well]))
        if leak is not None:  # the id and the topic's key, as a notebook shows
            info = patient(me, lambda: conn.status(run.id), deadline)
            leak.append((run.id, getattr(info, "stream_key", "")))
        timed(me, conn.executions, lambda: conn.status(run.id))
        while not run.wait(rng.uniform(0.2, 0.5)) and time.monotonic() < deadline:
            timed(me, conn.executions, lambda: conn.status(run.id))
        finished = run.wait(max(0.0, deadline - time.monotonic()))
        me.run_s = time.perf_counter() - began
        me.state = run.state
        if not finished:
            me.errors.append(f"run {run.id} not finished by the deadline")
            return me
        # callbacks run on the connection's callback thread: let them catch up
        settle = time.monotonic() + 5.0
        while sum(me.arrivals.values()) < len(me.wells) and time.monotonic() < settle:
            time.sleep(0.02)
        time.sleep(0.1)  # a duplicate would show up here
        table = run.result(timeout=1.0)
        iterated = Counter(w.well for w in run)
        statuses = {w.well: w.status for w in run}
        expected = Counter(me.wells)
        me.ok = (
            run.state == "done"
            and me.arrivals == expected
            and iterated == expected
            and Counter(table["well"]) == expected
            and all(s == "done" for s in statuses.values())
        )
        if not me.ok:
            me.errors.append(
                f"run {run.id} {run.state}: on_well {dict(me.arrivals)}, "
                f"iterated {dict(iterated)}, wells {statuses}"
            )
    except Exception as exc:
        me.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if conn is not None:
            conn.close()
    return me


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
        code = default_pipeline().to_code()
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


def wells_of(index: int, count: int, plate_wells: list[str]) -> list[str]:
    """``count`` wells for user ``index``, rotated so users spread over the plate."""
    return [plate_wells[(index + i) % len(plate_wells)] for i in range(count)]


def warm_up(address: str, users: Users, name: str, limit: float) -> list[str]:
    """Import and warm the workers once, before any timing; the plate's wells."""
    with connect(address, **users.connect_args(name), timeout=60.0) as probe:
        wells = list(probe.plate_info(PLATE).wells)
        probe.preview(default_pipeline(), PLATE, wells[0], max_size=128)
        probe.submit(default_pipeline(), PLATE).result(limit)
    return wells


@dataclass
class Measured:
    """Everything one benchmark run found, for the report."""

    lone: Honest
    honest: list[Honest]
    attack: Attack | None
    rss: RssSampler
    idle_rss: tuple[int, int]
    loaded_s: float
    alive: bool
    server_log: str


def loaded_run(
    server: LocalServer,
    users: Users,
    honest: list[Honest],
    args: argparse.Namespace,
    rss: RssSampler,
    deadline: float,
) -> Attack | None:
    """Every honest user at once, and the attacker unless ``--no-attacker``."""
    stop = threading.Event()
    leaked: list[tuple[str, str]] = []  # honest ids and keys, for the attacker
    barrier = threading.Barrier(len(honest) + (0 if args.no_attacker else 1))
    threads = [
        threading.Thread(
            target=honest_user,
            args=(server.address, users, h),
            kwargs={
                "previews": args.previews,
                "deadline": deadline,
                "start": barrier,
                "leak": leaked,
            },
            name=h.name,
            daemon=True,  # a stuck user must not keep the benchmark alive
        )
        for h in honest
    ]
    attacker = None
    if not args.no_attacker:
        attacker = Attacker(
            server.address,
            server.event_address,
            users,
            stop,
            mark=lambda phase: setattr(rss, "phase", f"attacker: {phase}"),
            leaked=leaked,
        )
        attack_s = max(10.0, deadline - time.monotonic() - 5.0)

        def attack() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(60.0)
            attacker.run(attack_s)

        threads.append(threading.Thread(target=attack, name=ATTACKER, daemon=True))
    rss.phase = "loaded run"
    for t in threads:
        t.start()
    for t in threads[: len(honest)]:
        t.join(max(1.0, deadline - time.monotonic() + 10.0))
    stop.set()
    for t in threads[len(honest) :]:  # the attacker ends its phases by ``end``
        t.join(max(30.0, deadline - time.monotonic() + 15.0))
    return None if attacker is None else attacker.result


def measure(args: argparse.Namespace, names: list[str]) -> Measured:
    """Plate, keys, server; warm-up, the lone run, then the loaded run."""
    with tempfile.TemporaryDirectory(prefix="bench-shared-") as tmp:
        base = Path(tmp)
        plates = base / "plates"
        plates.mkdir()
        make_plate(plates, args.wells, args.size)
        users = make_users(base / "auth", [*names, ATTACKER])
        (base / "srv").mkdir()
        config = write_config(base / "srv", plates, users, concurrent=args.users)
        serve = ["--config", str(config), "--log-level", "WARNING"]
        with LocalServer(serve, base / "srv") as server:
            assert server.process is not None
            rss = RssSampler(server.process.pid)
            rss.start()
            deadline = time.monotonic() + args.limit
            rss.phase = "warm-up"
            try:
                plate_wells = warm_up(server.address, users, names[0], args.limit / 4)
            except (OpenHCSError, TimeoutError) as exc:
                tail = server.log()[-3000:]
                raise SystemExit(f"the server did not serve: {exc}\n{tail}") from None

            # the lone run: the same user code, alone on the idle server
            rss.phase = "lone run"
            lone = honest_user(
                server.address,
                users,
                Honest(names[0], wells_of(0, args.wells, plate_wells)),
                previews=args.previews,
                deadline=deadline,
            )
            try:
                idle_rss = rss.sample()
            except psutil.Error:  # the server is gone; the report says so
                idle_rss = (0, 0)

            honest = [
                Honest(n, wells_of(i, args.wells, plate_wells))
                for i, n in enumerate(names)
            ]
            began = time.perf_counter()
            attack = loaded_run(server, users, honest, args, rss, deadline)
            loaded_s = time.perf_counter() - began
            rss.stop.set()
            rss.join(2.0)
            return Measured(
                lone,
                honest,
                attack,
                rss,
                idle_rss,
                loaded_s,
                server.running,
                server.log(),
            )


def report(args: argparse.Namespace, m: Measured) -> None:
    """One plain line per figure."""
    honest = m.honest
    count = len(honest)
    latencies = [x for h in honest for x in h.latencies]
    failed_calls = sum(1 for h in honest for e in h.errors if e.startswith("command"))
    preview_s = [x for h in honest for x in h.preview_s]
    runs = [h.run_s for h in honest if h.ok]
    who = f"{count} honest users" + ("" if m.attack is None else " + 1 attacker")
    print(
        f"shared server: {who}, {args.wells} wells each, {WORKERS} workers, "
        f"plate 2x{max(3, -(-args.wells // 2))} wells, 1 field, 2 channels, "
        f"{args.size}^2"
    )
    state = "complete" if m.lone.ok else "NOT complete"
    print(f"lone run ({m.lone.name} alone): {m.lone.run_s:.2f} s, {state}")
    print(f"honest runs complete, each well once: {sum(h.ok for h in honest)}/{count}")
    if runs:
        median, worst = statistics.median(runs), max(runs)
        print(f"honest runs under load: median {median:.2f} s, max {worst:.2f} s")
        print(
            f"lone / loaded run time: median {m.lone.run_s / median:.3f}, "
            f"worst {m.lone.run_s / worst:.3f} "
            f"(an even share of the workers: ~{1 / count:.3f})"
        )
    print(
        f"honest command latency (status/list, {len(latencies)} calls): "
        f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms, "
        f"max {max(latencies, default=float('nan')) * 1000:.1f} ms; "
        f"{failed_calls} failed"
    )
    print(
        f"honest previews: {sum(h.previews_ok for h in honest)}/"
        f"{count * args.previews} ok, p50 {percentile(preview_s, 50):.2f} s; "
        f"'busy, retry' refusals retried: {sum(h.busy for h in honest)}"
    )
    idle_server, idle_total = m.idle_rss
    print(
        f"server peak RSS: {m.rss.peak_server / MIB:.0f} MiB alone, "
        f"{m.rss.peak_total / MIB:.0f} MiB with workers "
        f"(after the lone run {idle_server / MIB:.0f} / {idle_total / MIB:.0f} MiB); "
        f"server peak during: {m.rss.peak_phase}"
    )
    if m.attack is not None:
        phases = [(p, r) for p, r in m.rss.peaks.items() if p.startswith("attacker")]
        print(
            "server peak RSS by attacker phase: "
            + ", ".join(f"{p[10:]} {r / MIB:.0f} MiB" for p, r in phases)
        )
        report_attack(m.attack)
    tracebacks = m.server_log.count("Traceback")
    print(
        f"server alive at the end: {'yes' if m.alive else 'NO'}, "
        f"{tracebacks} tracebacks in its log"
    )
    if tracebacks:
        last = m.server_log[m.server_log.rindex("Traceback") :].strip().splitlines()
        print(f"  last server traceback ends: {' | '.join(last[-3:])}"[:400])
    for h in [m.lone, *honest]:
        for error in h.errors[:2]:
            print(f"  {h.name}: {error}"[:300])


def report_attack(res: Attack) -> None:
    state = "" if res.finished else " (still running at this report)"
    print(f"attacker phases{state}: {', '.join(res.phases)}")
    print(
        f"events of others the attacker received: {res.count(res.heard)} "
        f"(goal 0), from {len(set(res.heard) - res.own)} executions; "
        f"{res.count(res.unread)} more queued on its unread socket; "
        f"of its own {sum(res.heard[e] for e in res.own)}"
    )
    print(
        f"other users' executions the attacker could read: "
        f"{res.others_answered}/{res.others_asked} requests answered (goal 0); "
        f"refused: {', '.join(f'{n} {c}' for c, n in res.others_refused.items())}"
    )
    print(
        f"attacker: {res.flooded} commands flooded unread "
        f"({res.flood_refused} more not sent: its send queue was full), "
        f"{res.fetches_unread} full-resolution fetches unread "
        f"({res.fetches_refused} more not sent)"
    )
    replies = ", ".join(f"{n} {code}" for code, n in res.flood_replies.most_common())
    print(f"attacker flood replies, read after the attack: {replies or 'none'}")
    print(f"attacker huge code: {'; '.join(res.huge) or 'not sent'}")
    print(f"attacker many-frame message: {res.multipart}")
    for error in res.errors[:3]:
        print(f"  attacker error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--wells", type=int, default=2)
    parser.add_argument("--previews", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--no-attacker", action="store_true")
    parser.add_argument("--limit", type=float, default=180.0, help="seconds, at most")
    args = parser.parse_args()
    honest_count = args.users if args.no_attacker else args.users - 1
    names = [f"user{i:02d}" for i in range(1, honest_count + 1)]
    began = time.perf_counter()
    measured = measure(args, names)
    report(args, measured)
    total = time.perf_counter() - began
    until = "" if args.no_attacker else " (until the attacker stopped)"
    print(f"loaded phase {measured.loaded_s:.1f} s{until}, total {total:.1f} s")


if __name__ == "__main__":
    main()
