"""What an admin's view (metrics, ``openhcs-server status``) knows of one worker."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerHealth:
    """One worker: its slot, whether it is up, times replaced, and its pid."""

    index: int
    alive: bool
    restarts: int
    pid: int | None
