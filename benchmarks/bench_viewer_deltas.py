"""Bytes the plate viewer sends per batch: per-well deltas against whole-dict sync.

Run: python benchmarks/bench_viewer_deltas.py [--wells 384] [--features 24]
     [--batch 1 4 16] [--fail-every 20]

A ``PlateViewer`` on a 16 x 24 plate follows a stand-in execution that reports
every well once, ``--batch`` wells per writer batch, each with ``--features``
per-well numbers (like the cells pipeline's aggregates) and every
``--fail-every``-th well failed. For each batch it records:

- after: the bytes of the ``wells`` custom messages the widget really sends
  through its comm (JSON, as the kernel encodes them);
- before: what syncing ``status``/``values``/``errors`` as whole Dict traits
  sent: an ipywidgets ``update`` message holding each of those dicts that
  changed in the batch, entire (traitlets skips an equal value).

It prints mean and largest bytes per batch of both, their ratio, and the
snapshot a newly opened view gets once. No previews travel: image bytes are
the same either way.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from typing import Any

from openhcs_nb.client import WellEvent
from openhcs_nb.jupyter._viewer_wells import KEYS
from openhcs_nb.jupyter.viewer import PlateViewer
from openhcs_nb.plates.model import PlateLayout


def encoded(message: Any) -> int:
    return len(json.dumps(message, separators=(",", ":"), allow_nan=False).encode())


class Reporter:
    """Just enough of an Execution for ``follow``: it hands wells to callbacks."""

    requested_wells: tuple[str, ...] = ()
    state = "running"

    def __init__(self) -> None:
        self.callbacks: list[Callable[[WellEvent], Any]] = []

    def on_well(self, callback: Callable[[WellEvent], Any]) -> None:
        self.callbacks.append(callback)

    def report(self, event: WellEvent) -> None:
        for callback in self.callbacks:
            callback(event)


def plate(wells: int) -> PlateLayout:
    rows = "ABCDEFGHIJKLMNOP"[: max(1, wells // 24)]
    names = tuple(f"{r}{c:02d}" for r in rows for c in range(1, 25))[:wells]
    return PlateLayout(
        name="bench",
        rows=tuple(rows),
        columns=tuple(range(1, 25)),
        wells=names,
        fields=1,
        channels=("DAPI",),
        z=1,
        t=1,
        dtype="uint16",
        shape=(8, 8),
    )


def summary(index: int, features: int) -> dict[str, float]:
    names = ["count"] + [
        f"{prefix}feature{k}_{agg}"
        for prefix in ("", "cells_")
        for k in range(features)
        for agg in ("mean", "median", "std")
    ]
    return {
        n: 1.0 + ((index * 7919 + i * 104729) % 100000) / 997
        for i, n in enumerate(names[:features])
    }


def run(wells: int, features: int, batch: int, fail_every: int) -> dict[str, Any]:
    viewer = PlateViewer(plate(wells), interval=3600.0)
    sent: list[int] = []
    comm_send = viewer.comm.send

    def record(data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        content = data.get("content", {}) if data.get("method") == "custom" else {}
        if content.get("type") == "wells":
            sent.append(encoded(data))
        comm_send(data=data, metadata=metadata, buffers=buffers)

    viewer.comm.send = record
    execution = Reporter()
    viewer.follow(execution)
    viewer.flush()
    sent.clear()
    before: list[int] = []
    after: list[int] = []
    previous = {k: dict(getattr(viewer, k)) for k in KEYS}
    for start in range(0, wells, batch):
        for i, well in enumerate(viewer.wells[start : start + batch], start):
            failed = fail_every and i % fail_every == fail_every - 1
            execution.report(
                WellEvent(
                    well=well,
                    status="failed" if failed else "done",
                    summary={} if failed else summary(i, features),
                    error="ValueError: no nuclei" if failed else None,
                    seq=i + 1,
                )
            )
        viewer.flush()
        now = {k: dict(getattr(viewer, k)) for k in KEYS}
        changed = {k: now[k] for k in KEYS if now[k] != previous[k]}
        before.append(
            encoded({"method": "update", "state": changed, "buffer_paths": []})
        )
        after.append(sum(sent))
        sent.clear()
        previous = now
    viewer._handle_custom_msg({"type": "ready"}, [])
    viewer.flush()
    snapshot = sum(sent)
    viewer.close()
    return {"before": before, "after": after, "snapshot": snapshot}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wells", type=int, default=384)
    parser.add_argument("--features", type=int, default=24)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--fail-every", type=int, default=20)
    args = parser.parse_args()
    print(
        f"{args.wells} wells, {args.features} features per well, "
        f"every {args.fail_every}th well failed"
    )
    print(
        "wells/batch  before mean/max B   after mean/max B   before/after  snapshot B"
    )
    for batch in args.batch:
        r = run(args.wells, args.features, batch, args.fail_every)
        b, a = r["before"], r["after"]
        ratio = statistics.mean(b) / statistics.mean(a)
        print(
            f"{batch:>11}  {statistics.mean(b):>9.0f}/{max(b):<8}"
            f"  {statistics.mean(a):>8.0f}/{max(a):<8}  {ratio:>11.1f}x"
            f"  {r['snapshot']:>9}"
        )


if __name__ == "__main__":
    main()
