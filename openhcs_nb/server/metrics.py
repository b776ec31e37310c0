"""The server's health as Prometheus metrics, on a loopback port of its own.

Off unless ``[metrics] port`` is set. Two kinds of figures:

- *counted* as events are published (:meth:`ServerMetrics.observe`): wells
  done, failed and timed out, and the well duration histogram. They start at
  zero with each server process, as Prometheus counters do;
- *read* at each scrape (:class:`_Snapshot`): queue depth and running wells
  per user from the job store (its own read-only SQLite connection, so a
  scrape never waits on the store's write lock), workers alive and their
  restarts, the resident memory of the server and its workers, and the size
  of the job store and results folder (re-measured at most every
  ``store_size_interval_s``, since walking a large folder is slow).

Each server has its own :class:`~prometheus_client.CollectorRegistry`; nothing
is registered in prometheus-client's global one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from openhcs_nb.protocol import WellDone, WellFailed
from openhcs_nb.server.disk_usage import folder_bytes
from openhcs_nb.server.job_records import StoredEvent
from openhcs_nb.server.worker_health import WorkerHealth

log = logging.getLogger(__name__)

#: Well durations span seconds (a small field) to an hour (a deep stack).
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)

_ACTIVE = "('QUEUED', 'RUNNING')"
_WELL_DONE = msgspec.msgpack.Decoder(WellDone)
_WELL_FAILED = msgspec.msgpack.Decoder(WellFailed)


class ServerMetrics:
    """The registry of one server, and the counters its events feed."""

    def __init__(
        self,
        jobs_path: Path,
        results_root: Path,
        workers: Callable[[], Sequence[WorkerHealth]],
        *,
        size_interval_s: float = 60.0,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.wells = Counter(
            "openhcs_wells",
            "Wells finished by this server process, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("done", "failed", "timed_out"):
            self.wells.labels(outcome)
        self.duration = Histogram(
            "openhcs_well_duration_seconds",
            "Seconds a worker spent on a well that succeeded",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.snapshot = _Snapshot(jobs_path, results_root, workers, size_interval_s)
        self.registry.register(self.snapshot)
        self._http: Any = None
        self._thread: threading.Thread | None = None

    def observe(self, stored: StoredEvent) -> None:
        """Count a published event (any thread); unknown kinds are ignored."""
        if stored.kind == "well_done":
            done = _WELL_DONE.decode(stored.payload)
            self.wells.labels("done").inc()
            self.duration.observe(max(0.0, done.elapsed))
        elif stored.kind == "well_failed":
            failed = _WELL_FAILED.decode(stored.payload)
            timed_out = failed.error.startswith("well_timeout")
            self.wells.labels("timed_out" if timed_out else "failed").inc()

    def serve(self, address: str, port: int) -> int:
        """Start the HTTP endpoint on a daemon thread; returns the bound port."""
        self._http, self._thread = start_http_server(
            port, addr=address, registry=self.registry
        )
        bound = int(self._http.server_address[1])
        log.info("metrics on http://%s:%d/metrics", address, bound)
        return bound

    def close(self) -> None:
        """Stop the endpoint and close the store connection."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        self.snapshot.close()


class _Snapshot(Collector):
    """Gauges read when Prometheus scrapes (its thread, not the server's loop)."""

    def __init__(
        self,
        jobs_path: Path,
        results_root: Path,
        workers: Callable[[], Sequence[WorkerHealth]],
        size_interval_s: float,
    ) -> None:
        self.jobs_path = jobs_path
        self.results_root = results_root
        self.workers = workers
        self.size_interval_s = size_interval_s
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._size: tuple[float, int] = (-float("inf"), 0)

    def describe(self) -> list[Any]:
        """Nothing up front: a scrape at registration would open the store."""
        return []

    def collect(self) -> Iterator[Any]:
        """Queue, workers, memory and disk, as they are now."""
        with self._lock:
            queued, running = self._wells_by_user()
            store_bytes = self._store_bytes()
        yield _per_user("openhcs_queue_depth", "Wells waiting to run, per user", queued)
        yield _per_user("openhcs_running_wells", "Wells running, per user", running)
        workers = list(self.workers())
        alive = GaugeMetricFamily(
            "openhcs_workers", "Worker processes, by state", labels=["state"]
        )
        alive.add_metric(["alive"], sum(w.alive for w in workers))
        alive.add_metric(["dead"], sum(not w.alive for w in workers))
        yield alive
        restarts = GaugeMetricFamily(
            "openhcs_worker_restarts",
            "Times each worker was replaced since the server started",
            labels=["worker"],
        )
        for w in workers:
            restarts.add_metric([str(w.index)], w.restarts)
        yield restarts
        memory = GaugeMetricFamily(
            "openhcs_resident_bytes",
            "Resident memory of the server and its workers",
            labels=["process"],
        )
        memory.add_metric(["server"], _rss(os.getpid()))
        memory.add_metric(["workers"], sum(_rss(w.pid) for w in workers if w.pid))
        yield memory
        size = GaugeMetricFamily(
            "openhcs_store_bytes", "Bytes of the job store and results folder"
        )
        size.add_metric([], store_bytes)
        yield size

    def _wells_by_user(self) -> tuple[dict[str, int], dict[str, int]]:
        db = self._connect()
        if db is None:
            return {}, {}
        rows = db.execute(
            "SELECT e.user, w.state, count(*) FROM wells w "
            "JOIN executions e ON e.id = w.execution_id "
            f"WHERE e.state IN {_ACTIVE} AND w.state IN ('PENDING', 'RUNNING') "
            "GROUP BY e.user, w.state"
        ).fetchall()
        queued = {u: n for u, s, n in rows if s == "PENDING"}
        running = {u: n for u, s, n in rows if s == "RUNNING"}
        return queued, running

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and self.jobs_path.is_file():
            uri = f"file:{self.jobs_path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return self._db

    def _store_bytes(self) -> int:
        measured_at, size = self._size
        now = time.monotonic()
        if now - measured_at >= self.size_interval_s:
            size = folder_bytes(self.results_root)
            self._size = (now, size)
        return size

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _per_user(name: str, doc: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["user"])
    for user, value in sorted(values.items()):
        family.add_metric([user], value)
    return family


def _rss(pid: int) -> int:
    """Resident bytes of a process, 0 when it has gone."""
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return 0
