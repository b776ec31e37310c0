"""What the server does for its admin while it serves: metrics and retention.

The loop calls :meth:`Operations.tick` on each turn; a prune due by
``[retention] interval_s`` runs on a thread of its own (deleting result
stores can take a while), one at a time. Every published event is counted by
:meth:`Operations.observe`. Both are off unless configured, and cost nothing
then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from openhcs_nb.server.job_records import StoredEvent
from openhcs_nb.server.jobs import JobStore
from openhcs_nb.server.worker_health import WorkerHealth

log = logging.getLogger(__name__)


class Operations:
    """Metrics endpoint and periodic pruning of one running server."""

    def __init__(
        self,
        config: Any,
        store: JobStore,
        workers: Callable[[], Sequence[WorkerHealth]],
    ) -> None:
        self.config = config
        self.store = store
        self.metrics: Any = None
        self.metrics_port = 0
        if config.metrics.port:
            from openhcs_nb.server.metrics import ServerMetrics

            self.metrics = ServerMetrics(
                config.jobs_path,
                config.results.root,
                workers,
                size_interval_s=config.metrics.store_size_interval_s,
            )
        policy = config.retention
        self._prunes = bool(policy.max_age_days or policy.max_total_gib)
        self._next_prune = time.monotonic()
        self._pruning: threading.Thread | None = None

    def start(self) -> None:
        """Bind the metrics endpoint, if there is one."""
        if self.metrics is not None:
            section = self.config.metrics
            self.metrics_port = self.metrics.serve(section.address, section.port)

    def observe(self, stored: StoredEvent) -> None:
        """Count a published event (any thread)."""
        if self.metrics is not None:
            self.metrics.observe(stored)

    def tick(self) -> None:
        """Start a prune when one is due and none is running (loop thread)."""
        if not self._prunes or time.monotonic() < self._next_prune:
            return
        if self._pruning is not None and self._pruning.is_alive():
            return
        self._next_prune = time.monotonic() + self.config.retention.interval_s
        self._pruning = threading.Thread(
            target=self.prune_now, name="openhcs-prune", daemon=True
        )
        self._pruning.start()

    def prune_now(self) -> int:
        """Apply ``[retention]`` once; returns the number of runs removed."""
        from openhcs_nb.server.retention import apply_prune, plan_prune

        root = self.config.results.root
        try:
            plan = plan_prune(self.store, root, self.config.retention)
            removed = apply_prune(self.store, root, plan.remove)
        except Exception:
            log.exception("prune failed; the next one is in %s s", self.interval)
            return 0
        if removed:
            freed = sum(item.bytes for item in removed)
            log.info("pruned %d runs, %d bytes", len(removed), freed)
        return len(removed)

    @property
    def interval(self) -> float:
        """Seconds between automatic prunes."""
        return float(self.config.retention.interval_s)

    def close(self) -> None:
        """Stop the endpoint and wait for a prune under way."""
        if self._pruning is not None:
            self._pruning.join(timeout=30)
        if self.metrics is not None:
            self.metrics.close()
