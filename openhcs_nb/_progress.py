"""Progress of long local work (a plate run, the demo plate's first build).

A leaf module (the standard library only; tqdm is imported when a bar is
made) shared by ``execution/`` and ``plates/``. One rule decides what a user
sees: where someone is watching (an IPython kernel or shell, a terminal) a
``tqdm.auto`` bar, which is the notebook widget in Jupyter and a text bar in a
terminal; elsewhere (a server, a batch job) nothing, or a log line per step
where the work is long enough that its silence would look like a hang.

Callers take ``progress: bool | ProgressFactory | None``: ``None`` follows
that rule, ``True``/``False`` force a bar on or off, and a factory makes the
bar itself (a widget, a test's recorder).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Protocol


class ProgressBar(Protocol):
    """What the work drives: the subset of ``tqdm`` it uses."""

    def update(self, n: int = 1) -> object:
        """Count ``n`` more finished items."""

    def close(self) -> object:
        """The work is over (done or failed)."""


#: ``factory(total, description)`` makes the bar for one piece of work.
ProgressFactory = Callable[[int, str], ProgressBar]
Progress = bool | ProgressFactory | None


def watched() -> bool:
    """Whether a person is likely looking: an IPython session or a terminal.

    IPython is not imported here: only a session that already runs it counts.
    """
    ipython = sys.modules.get("IPython")
    if ipython is not None and getattr(ipython, "get_ipython", lambda: None)():
        return True
    stderr = sys.stderr
    return hasattr(sys, "ps1") or bool(stderr is not None and stderr.isatty())


def tqdm_bar(total: int, description: str) -> ProgressBar:
    """A ``tqdm.auto`` bar counting wells: a widget in Jupyter, text elsewhere."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="well")


class LogBar:
    """A bar for unwatched work: one INFO line per finished item.

    The line says what is being done and how far along it is, e.g.
    ``generating the demo plate (24 wells) in /cache: 5/24 wells``.
    """

    def __init__(
        self, total: int, description: str, logger: logging.Logger | None = None
    ) -> None:
        self.total = total
        self.description = description
        self.done = 0
        self.logger = logger or logging.getLogger("openhcs_nb")

    def update(self, n: int = 1) -> None:
        """Log the new count."""
        self.done += n
        self.logger.info("%s: %d/%d wells", self.description, self.done, self.total)

    def close(self) -> None:
        """Nothing to tear down: each line stands on its own."""


class _Silent:
    """The bar when nobody asked for one and nobody is watching."""

    def update(self, n: int = 1) -> None:
        """Ignore the count."""

    def close(self) -> None:
        """Nothing to close."""


def make_bar(
    progress: Progress, total: int, description: str, *, log_unwatched: bool = False
) -> ProgressBar:
    """The bar ``progress`` asks for (see the module docstring for the rule).

    ``log_unwatched`` picks a :class:`LogBar` instead of silence for
    ``progress=None`` when nobody is watching.
    """
    if callable(progress):
        return progress(total, description)
    if progress is None:
        if watched():
            return tqdm_bar(total, description)
        return LogBar(total, description) if log_unwatched else _Silent()
    return tqdm_bar(total, description) if progress else _Silent()
