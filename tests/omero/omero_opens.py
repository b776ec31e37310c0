"""Records every file this process opens, through Python's audit hooks.

``open()``, ``io.open`` and ``os.open`` (used by tifffile, numpy.memmap, zarr)
all raise the ``open`` audit event, so a test can prove that no file of an
image was opened. Hooks cannot be removed; this one costs one list check per
event while not recording.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_OPENED: list[str] = []
_RECORDING: list[bool] = [False]


def _audit(event: str, args: tuple) -> None:
    if _RECORDING[0] and event == "open" and args and not isinstance(args[0], int):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextmanager
def recording_opens() -> Iterator[list[str]]:
    """Collect the paths opened inside the block."""
    _OPENED.clear()
    _RECORDING[0] = True
    try:
        yield _OPENED
    finally:
        _RECORDING[0] = False
