"""The run panel's estimate of the time left, from the rate wells finish at.

The rate is measured between the first and the latest finished well, so the
time the run waited in the queue or spent on a plate-level step before its
first well does not count. No estimate until two wells have finished: one
well gives no rate, and a guess that jumps about is worse than none.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Wells that must have finished before an estimate is shown.
MIN_FINISHED = 2


def seconds_left(finished_at: Sequence[float], total: int, now: float) -> float | None:
    """Seconds until ``total`` wells are finished, or None when unknown.

    ``finished_at`` are the clock times at which wells finished, in order.
    The estimate counts down between wells: the time since the latest one
    is taken off.
    """
    done = len(finished_at)
    remaining = total - done
    if done < MIN_FINISHED or remaining <= 0:
        return None
    span = finished_at[-1] - finished_at[0]
    if span <= 0:
        return None
    per_well = span / (done - 1)
    return max(0.0, remaining * per_well - max(0.0, now - finished_at[-1]))


def format_left(seconds: float) -> str:
    """``"about 40 s left"``, ``"about 3 min left"``, ``"about 1 h 20 min left"``."""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min left" if minutes else f"about {hours} h left"
