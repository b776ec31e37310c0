"""Turning events into stored rows and stored rows back into frames.

An event is stored as its encoded header (``payload``) plus its array buffers
packed into one msgpack list (``arrays``). Publishing sends exactly the stored
bytes, so what a live subscriber sees and what a later ``Fetch`` returns are the
same bytes. ``Fetch`` merges several events into one reply, so their array
references are renumbered to index the reply's buffers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import numpy as np

from openhcs_nb.protocol import (
    ArrayPacker,
    FetchReply,
    Finished,
    WellDone,
    decode_event,
    encode,
    unpack_array,
)
from openhcs_nb.protocol.events import Event
from openhcs_nb.server.jobs import EventDraft, ExecutionRecord, StoredEvent

_BUFFERS = msgspec.msgpack.Decoder(list[bytes])


def draft(
    event_type: type[Event],
    execution_id: str,
    arrays: Mapping[str, np.ndarray] | None = None,
    **fields: Any,
) -> EventDraft:
    """An event draft whose header is encoded once the store assigns its seq.

    ``fields`` are the event's own fields; ``execution_id``, ``seq`` and
    ``time`` are filled in here. ``arrays`` become a WellDone's previews, their
    frames numbered from 0. The stored kind is the type's snake-case name.
    """
    packer = ArrayPacker()
    refs = packer.add_all(arrays) if arrays else []
    if refs:
        fields["previews"] = refs
    blob = msgspec.msgpack.encode([bytes(b) for b in packer.buffers]) if refs else None
    now = time.time()

    def payload(seq: int) -> bytes:
        event = event_type(execution_id=execution_id, seq=seq, time=now, **fields)
        return bytes(encode(event, packer.buffers)[0])

    kind = re.sub(r"(?<!^)(?=[A-Z])", "_", event_type.__name__).lower()
    return EventDraft(kind, payload, blob)


def finished_draft(
    record: ExecutionRecord, state: str, error: str | None = None
) -> EventDraft:
    """The last event of an execution, with its final counts from the store."""
    return draft(
        Finished,
        record.id,
        state=state,
        done=record.done,
        failed=record.failed,
        total=record.total,
        error=error,
    )


def frames_of(stored: StoredEvent) -> list[bytes]:
    """The frames of a stored event after its topic: header, buffers."""
    buffers = _BUFFERS.decode(stored.arrays) if stored.arrays else []
    return [stored.payload, *buffers]


def fetch_reply(
    rid: int,
    execution_id: str,
    stored: Sequence[StoredEvent],
    last_seq: int,
    complete: bool,
    state: str,
    replace_arrays: Callable[[Event], dict[str, np.ndarray] | None] | None = None,
) -> tuple[FetchReply, list[Any]]:
    """One FetchReply holding ``stored`` events with renumbered array refs.

    ``replace_arrays`` may swap an event's previews for other arrays (full
    resolution images); it returns None to keep the stored previews.
    """
    events: list[Event] = []
    packer = ArrayPacker()
    for row in stored:
        own = _BUFFERS.decode(row.arrays) if row.arrays else []
        event, _ = decode_event([row.payload, *own])
        if isinstance(event, WellDone):
            swapped = replace_arrays(event) if replace_arrays else None
            arrays = (
                swapped
                if swapped is not None
                else {ref.name: unpack_array(ref, own) for ref in event.previews}
            )
            refs = [packer.add(name, array) for name, array in arrays.items()]
            event = msgspec.structs.replace(event, previews=refs)
        events.append(event)
    reply = FetchReply(
        rid=rid,
        execution_id=execution_id,
        events=events,
        last_seq=last_seq,
        complete=complete,
        state=state,
    )
    return reply, packer.buffers
