"""What the plate viewer's single writer is handed: one small type per kind.

Callbacks on the client's thread, fetch threads and the widget's own
observers never touch traits; they put one of these into the viewer's
:class:`~._writer.CoalescingWriter`, and ``PlateViewer._apply`` handles a
batch of them (plus the client's ``WellEvent`` records) in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Queued:
    wells: tuple[str, ...]


@dataclass(frozen=True)
class RunState:
    state: str
    error: str | None = None
    final: bool = False  # the execution has ended


@dataclass(frozen=True)
class Started:
    """A worker took ``well`` (``WellStarted``)."""

    well: str


@dataclass(frozen=True)
class Load:
    """Show the images of (well, field) as request number ``request``.

    ``loading``: a fetch for it is under way; until it lands, the streamed
    previews (if any) are shown, else a line saying it is loading.
    """

    request: int
    well: str
    field: int
    loading: bool = False


@dataclass(frozen=True)
class Fetched:
    request: int
    well: str
    field: int
    images: Mapping[str, np.ndarray] | None
    error: str | None
    keep: bool = False  # keep the images as the well's previews


@dataclass(frozen=True)
class Ready:
    """A view of the widget opened: send it every well (``_viewer_wells``)."""


@dataclass(frozen=True)
class TileReply:
    """A tile server's answer, sent to the page by the writer (kernel loop)."""

    content: dict[str, Any]
    buffers: list[bytes]
