"""A shared server under load: honest users next to one who misbehaves.

Run: python benchmarks/bench_shared_server.py [--users 20] [--wells 2] [--no-attacker]

One real ``openhcs-server`` process on loopback, CurveZMQ on, one key per user
(``tests/multiuser.py``), a small synthetic OME-Zarr plate, 2 workers.

- ``users - 1`` honest users, one thread and one ``openhcs_nb.connect`` each:
  two previews, one submit of ``nuclei_count_pipeline()`` on ``--wells`` wells,
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
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from multiuser import Users, make_users

from openhcs_nb import connect, nuclei_count_pipeline
from openhcs_nb.client import RemoteBusy
from openhcs_nb.errors import OpenHCSError
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate
from openhcs_nb.server.local import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared_attacker import ATTACKER, MIB, PLATE, WORKERS, Attack, Attacker

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
    pipeline = nuclei_count_pipeline()
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


def wells_of(index: int, count: int, plate_wells: list[str]) -> list[str]:
    """``count`` wells for user ``index``, rotated so users spread over the plate."""
    return [plate_wells[(index + i) % len(plate_wells)] for i in range(count)]


def warm_up(address: str, users: Users, name: str, limit: float) -> list[str]:
    """Import and warm the workers once, before any timing; the plate's wells."""
    with connect(address, **users.connect_args(name), timeout=60.0) as probe:
        wells = list(probe.plate_info(PLATE).wells)
        probe.preview(nuclei_count_pipeline(), PLATE, wells[0], max_size=128)
        probe.submit(nuclei_count_pipeline(), PLATE).result(limit)
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
