"""What the client hands to users: one finished well, one preview.

Arrays on the wire are read-only views of the received frames. The records
here hold writable copies, so a user may change them and the frames can be
freed as soon as the message is handled (a fetch reply carries many wells'
previews in one message; a kept view would pin all of it).

An execution keeps every well's record but its previews only within the
connection's budget (``_preview_cache``): the record it keeps is
:func:`without_previews`, and ``previews_dropped`` says images existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from openhcs_nb.protocol import (
    ArrayRef,
    PreviewReply,
    WellDone,
    WellFailed,
    unpack_array,
)

#: Server state names that the client reports under the protocol's name.
_STATE_NAMES = {"finished": "done"}
#: States after which an execution changes no more.
FINAL_STATES = frozenset({"done", "failed", "cancelled"})


def state_name(state: str) -> str:
    """The protocol's name of an execution state (``finished`` -> ``done``)."""
    return _STATE_NAMES.get(state, state)


@dataclass(frozen=True)
class WellEvent:
    """One well of an execution, finished or failed, as the server reported it.

    ``previews_dropped`` is True when the server streamed previews for this
    well but the client no longer keeps them (its preview budget is spent on
    newer wells); ``Execution.previews(well)`` fetches them again.
    """

    well: str
    status: str
    summary: dict[str, float | int] = field(default_factory=dict)
    previews: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    seq: int = 0
    execution_id: str = ""
    time: float = 0.0
    elapsed: float = 0.0
    previews_dropped: bool = False

    @property
    def ok(self) -> bool:
        """Whether the well finished without error."""
        return self.status == "done"


@dataclass(frozen=True)
class PreviewResult:
    """Images of one field after the first ``upto`` steps, computed on the server.

    ``images`` maps ``"<step>/<channel>"`` (or ``"before/..."``, ``"after/..."``,
    ``"labels/<name>"``, as the server names them) to writable arrays.
    """

    well: str
    site: int
    step_names: tuple[str, ...]
    images: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    measurements: dict[str, float] = field(default_factory=dict)
    objects: int = 0
    elapsed: float = 0.0

    def __repr__(self) -> str:
        names = ", ".join(self.images)
        return (
            f"<PreviewResult {self.well} site {self.site}: "
            f"{len(self.images)} images ({names}), {self.objects} objects>"
        )


def copy_arrays(refs: Sequence[ArrayRef], buffers: Sequence[Any]) -> dict[str, Any]:
    """``{name: writable copy}`` of the arrays ``refs`` name in ``buffers``."""
    return {ref.name: np.array(unpack_array(ref, buffers)) for ref in refs}


def well_event(event: WellDone | WellFailed, buffers: Sequence[Any]) -> WellEvent:
    """The user-facing record of a decoded WellDone or WellFailed event."""
    if isinstance(event, WellDone):
        return WellEvent(
            well=event.well,
            status="done",
            summary=dict(event.summary),
            previews=copy_arrays(event.previews, buffers),
            seq=event.seq,
            execution_id=event.execution_id,
            time=event.time,
            elapsed=event.elapsed,
        )
    return WellEvent(
        well=event.well,
        status="failed",
        error=event.error,
        traceback=event.remote_traceback or None,
        seq=event.seq,
        execution_id=event.execution_id,
        time=event.time,
    )


def without_previews(event: WellEvent) -> WellEvent:
    """``event`` without its images, marked ``previews_dropped`` if it had any."""
    if not event.previews:
        return event
    return replace(event, previews={}, previews_dropped=True)


def with_previews(event: WellEvent, previews: dict[str, np.ndarray]) -> WellEvent:
    """A record stripped by :func:`without_previews` with its images back."""
    return replace(event, previews=previews, previews_dropped=False)


def preview_result(reply: PreviewReply, buffers: Sequence[Any]) -> PreviewResult:
    """The user-facing record of a PreviewReply and its image frames."""
    return PreviewResult(
        well=reply.well,
        site=reply.site,
        step_names=tuple(reply.step_names),
        images=copy_arrays(reply.images, buffers),
        measurements=dict(reply.measurements),
        objects=reply.objects,
        elapsed=reply.elapsed,
    )
