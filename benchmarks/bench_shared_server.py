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

The plate, config and RSS sampler are in ``_shared_setup.py``, the honest
users in ``_shared_honest.py`` and the attacker in ``_shared_attacker.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from multiuser import Users, make_users

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.server.local import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared_attacker import ATTACKER, MIB, WORKERS, Attack, Attacker
from _shared_honest import Honest, honest_user, warm_up, wells_of
from _shared_setup import RssSampler, make_plate, write_config


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


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
