"""Stored events as plain JSON-able dicts, for a web relay that polls.

A web page cannot hold the ZeroMQ stream, so a front end (the OMERO.web
plugin) polls :func:`events` and forwards the dicts: every event the server
stored, in seq order, with previews as small descriptors (name, dtype,
shape) and never pixels. A page that wants a well's images asks
:func:`well_preview` for them. Both are bound as methods of
:class:`~openhcs_nb.client.connection.Connection`.

Rules: floats that JSON cannot carry (NaN, infinities) become None; the
event's ``type`` is its wire name (``WellDone``, ``Finished``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from openhcs_nb.protocol import Fetch, WellDone

if TYPE_CHECKING:
    import numpy as np

    from openhcs_nb.client.connection import Connection

#: Events one Fetch may return (the server caps it at 1000).
MAX_LIMIT = 1000


def event_dict(event: Any) -> dict[str, Any]:
    """One event as JSON-able builtins; previews as ``{name, dtype, shape}``."""
    data = msgspec.to_builtins(event)
    if isinstance(event, WellDone):
        data["previews"] = [
            {"name": ref.name, "dtype": ref.dtype, "shape": list(ref.shape)}
            for ref in event.previews
        ]
    return _finite(data)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def events(
    self: Connection,
    execution_id: str,
    since_seq: int = 0,
    limit: int = 500,
    *,
    timeout: float | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Stored events after ``since_seq`` and the cursor to poll from next.

    The cursor is the seq of the last event returned (``since_seq`` when
    none): pass it back as ``since_seq``. The execution is over once a
    ``Finished`` event has come.

    Raises
    ------
    RemoteUnknownExecution
        No such execution for this user (or someone else's).
    """
    message = Fetch(
        rid=0,
        execution_id=execution_id,
        since_seq=max(0, since_seq),
        limit=max(1, min(limit, MAX_LIMIT)),
    )

    def read(reply: Any, _buffers: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        found = [event_dict(event) for event in reply.events]
        return found, (reply.events[-1].seq if reply.events else since_seq)

    return self._call(message, timeout=timeout, then=read)


def well_preview(
    self: Connection,
    execution_id: str,
    well: str,
    site: int = 0,
    *,
    seq: int | None = None,
    timeout: float | None = None,
) -> dict[str, np.ndarray]:
    """The images of a finished ``well``, as ``{name: array}``.

    Field 0 gives the previews the server streamed; another ``site`` gives
    the full-resolution images of that field.

    ``seq`` is the seq of the well's ``WellDone`` when the caller knows it
    (from :func:`events`); otherwise the stored events are searched.

    Raises
    ------
    KeyError
        The well has not finished (or failed) in this execution.
    RemoteUnknownExecution
        No such execution for this user.
    """
    if seq is None:
        seq = _done_seq(self, execution_id, well, timeout)
    return self._fetch_images(
        execution_id, seq, timeout, full_resolution=site != 0, site=site
    )


def _done_seq(
    conn: Connection, execution_id: str, well: str, timeout: float | None
) -> int:
    since = 0
    while True:
        found, cursor = events(conn, execution_id, since, MAX_LIMIT, timeout=timeout)
        for event in found:
            if event["type"] == "WellDone" and event["well"] == well:
                return int(event["seq"])
        if cursor == since:
            raise KeyError(f"execution {execution_id} has no result for well {well!r}")
        since = cursor
