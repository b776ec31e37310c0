"""The honest users of ``bench_shared_server.py``: one notebook user each.

Each makes previews, one run and status calls now and then, timing every
command, retrying what the server answers "busy" to, and checks that every
well of its run arrives exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from _shared_attacker import PLATE

from openhcs_nb import connect, nuclei_count_pipeline
from openhcs_nb.client import RemoteBusy

if TYPE_CHECKING:
    from multiuser import Users

T = TypeVar("T")


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
