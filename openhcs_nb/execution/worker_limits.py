"""What one worker process may use: CPU threads and memory.

N worker processes on C cores must not each start C BLAS or OpenMP threads:
the machine would run N x C threads and every well gets slower. A worker pins
the thread pools it has loaded (threadpoolctl) and sets the usual environment
variables for libraries it loads later.

A well that needs more memory than its worker's share would otherwise be
killed by the kernel's OOM killer, taking the worker (and on a shared server,
maybe another user's well) with it. A worker caps its data segment
(``RLIMIT_DATA``, which Linux applies to private anonymous mappings too), so an
oversized allocation raises :class:`MemoryError` inside the well instead, and
the well fails with a ``well_memory`` error while the worker carries on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: The environment variables the common thread pools read when they start.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_MIB = 1 << 20
#: Below this a worker could not even import the libraries it needs.
MIN_BUDGET_BYTES = 256 * _MIB


@dataclass(frozen=True)
class WorkerLimits:
    """Threads and memory for one worker; ``memory_bytes=0`` means no cap."""

    threads: int = 1
    memory_bytes: int = 0

    @classmethod
    def share(cls, workers: int, memory_bytes: int | None = None) -> WorkerLimits:
        """An even share of this machine's cores and memory for ``workers``.

        ``memory_bytes`` overrides the memory share (0 disables the cap).
        """
        n = max(1, workers)
        threads = max(1, usable_cores() // n)
        if memory_bytes is None:
            memory_bytes = int(total_memory_bytes() * 0.8 / n)
        return cls(threads, max(memory_bytes, MIN_BUDGET_BYTES) if memory_bytes else 0)


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def total_memory_bytes() -> int:
    """Physical memory of the machine (0 when it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 0


def apply_limits(limits: WorkerLimits) -> None:
    """Pin thread pools and cap memory in *this* process (a worker).

    Called first thing in every worker process; never in a user's kernel.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(limits.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=limits.threads)
    if limits.memory_bytes:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        soft = limits.memory_bytes
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def memory_message(well: str, limits_bytes: int) -> str:
    """The one-line ``well_memory`` cause for a well that ran out of its share."""
    budget = f"{limits_bytes / _MIB:,.0f} MiB" if limits_bytes else "the memory"
    return (
        f"well {well} needed more than its worker's {budget}; use fewer fields "
        "per step (variable_components), smaller planes, or fewer workers"
    )


def memory_cap_bytes() -> int:
    """The data-segment cap of this process (0 when there is none)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    return 0 if soft == resource.RLIM_INFINITY else int(soft)
