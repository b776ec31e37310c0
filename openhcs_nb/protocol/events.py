"""Events the server publishes about an execution (PUB socket, and inside Fetch).

Rules every event obeys:

- ``seq`` counts the events of one execution: 1, 2, 3, ... with no gap.
- An event is stored on the server before it is published, so PUB/SUB may drop
  it and a ``Fetch(since_seq=...)`` still returns it.
- ``time`` is the server's Unix time when the event was recorded.
- The last event of an execution is :class:`Finished`.

ArrayRefs in an event (``WellDone.previews``) index the buffers of the message
that carries the event: the PUB message itself, or the ``FetchReply``.
"""

from __future__ import annotations

import msgspec

from openhcs_nb.protocol.records import PROTOCOL_VERSION, ArrayRef


class _Event(msgspec.Struct, frozen=True, tag=True, tag_field="type", kw_only=True):
    """Fields every event carries; the tag is the class name."""

    execution_id: str
    seq: int
    time: float
    v: int = PROTOCOL_VERSION


class Queued(_Event, kw_only=True):
    """The execution was accepted; ``position`` executions run or wait before it."""

    position: int


class Started(_Event, kw_only=True):
    """Wells are being handed to ``workers`` workers."""

    total: int
    workers: int


class WellStarted(_Event, kw_only=True):
    """A worker took ``well``; a viewer marks it running until it is done or failed."""

    well: str


class WellDone(_Event, kw_only=True):
    """One well finished; its results are already stored on the server.

    ``summary`` holds per-well measurements (means over objects, counts);
    ``previews`` are downsampled images (full size in a full-resolution Fetch).
    """

    well: str
    summary: dict[str, float | int] = {}
    previews: list[ArrayRef] = []
    objects: int = 0
    elapsed: float = 0.0


class WellFailed(_Event, kw_only=True):
    """One well failed; the rest of the plate goes on."""

    well: str
    error: str
    remote_traceback: str = ""


class Progress(_Event, kw_only=True):
    """Counts so far, sent now and then so a late viewer can draw a bar."""

    done: int
    failed: int
    total: int
    # "" for wells; "illumination" while the plate-level flat-field fit runs.
    phase: str = ""


class Finished(_Event, kw_only=True):
    """The execution ended in ``state`` (done, failed, cancelled); nothing follows."""

    state: str
    done: int
    failed: int
    total: int
    error: str | None = None


Event = Queued | Started | WellStarted | WellDone | WellFailed | Progress | Finished
