"""``Fetch``: a page of an execution's stored events, for its owner.

Events come back exactly as stored (what a live subscriber got). A
full-resolution fetch swaps each WellDone's previews for the full field read
from the results, with its raw channels re-read from the input plate as
Submit opened it (plate roots, the user's OMERO session), never from a path
stored with the run; those pages hold a few wells at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openhcs_nb.protocol import Fetch
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server._events import fetch_reply
from openhcs_nb.server.jobs import TERMINAL_STATES, ExecutionState, StoredEvent
from openhcs_nb.server.peers import Peer

if TYPE_CHECKING:
    from openhcs_nb.server.handlers import Handlers

#: Wells with full-resolution images per Fetch reply; small events ride along.
FULL_RESOLUTION_PAGE = 4


def answer_fetch(h: Handlers, msg: Fetch, peer: Peer) -> tuple[Any, list[Any]]:
    """The FetchReply to ``msg`` (refused like an unknown id if not ``peer``'s)."""
    record = h.own(msg.execution_id, peer, "fetch")
    limit = max(1, min(msg.limit, 1000))
    stored = h.store.events_since(msg.execution_id, msg.since_seq, limit)
    if msg.full_resolution:  # full fields are large: page by wells done
        stored = upto_wells(stored, FULL_RESOLUTION_PAGE)
    last = stored[-1].seq if stored else msg.since_seq
    complete = record.state in TERMINAL_STATES and last >= record.last_seq
    swap = None
    if msg.full_resolution:
        results = ResultsStore(
            h.results_root / record.id,
            open_input=lambda _ref: h.work.open_plate(record.plate, peer),
        )
        swap = lambda event: results.read_field(event.well, msg.site)  # noqa: E731
    h.audit.record(
        peer,
        "fetch",
        "ok",
        execution_id=record.id,
        detail={"since": msg.since_seq, "full": msg.full_resolution},
    )
    return fetch_reply(
        msg.rid,
        msg.execution_id,
        stored,
        record.last_seq,
        complete,
        wire_state(record.state),
        swap,
    )


def wire_state(state: ExecutionState) -> str:
    """The wire name of a stored state: the store says finished, the wire done."""
    return "done" if state is ExecutionState.FINISHED else state.value


def upto_wells(stored: list[StoredEvent], wells: int) -> list[StoredEvent]:
    """``stored`` cut after its ``wells``-th WellDone (its images are the bulk)."""
    seen = 0
    for index, event in enumerate(stored):
        seen += event.kind == "well_done"
        if seen == wells:
            return stored[: index + 1]
    return stored
