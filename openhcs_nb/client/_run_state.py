"""What the events of one execution said so far: a plain record, no threads.

:class:`~openhcs_nb.client.execution.Execution` holds one :class:`RunState`
under its lock and feeds it every event once, in seq order. Keeping the rules
here, apart from waking waiters and running callbacks, lets them be read (and
tested) as a table:

- The run is ``running`` from its first ``Started``, ``WellStarted``,
  ``WellDone``, ``WellFailed`` or ``Progress`` event: a run that is already
  progressing never reads ``queued``, even when its ``Started`` comes late.
- A well is ``running`` from its ``WellStarted`` until its ``WellDone`` or
  ``WellFailed``; a well reported twice (a restarted server re-running it)
  counts once: the first report wins.
- ``Finished`` ends the run; nothing changes afterwards. Wells that never got
  a result then read ``cancelled`` (or ``failed`` when the run failed as a
  whole), never ``queued`` or ``running``.
- A server that stopped answering ends the run as ``server lost``; its wells
  keep what was last known.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhcs_nb.client._wells import FINAL_STATES, WellEvent, state_name
from openhcs_nb.protocol import (
    Event,
    Finished,
    Progress,
    Queued,
    Started,
    WellDone,
    WellFailed,
    WellStarted,
)

#: The state of an execution whose server stopped answering.
SERVER_LOST = "server lost"
#: Events that show the server is working on the run.
_RUNNING_EVENTS = (Started, WellStarted, WellDone, WellFailed, Progress)


@dataclass(frozen=True)
class Applied:
    """What one event changed that someone may be waiting for."""

    well: WellEvent | None = None  # a new result, with its images
    started: str | None = None  # a well a worker took


class RunState:
    """The state, wells and phase of one execution, as its events tell them."""

    def __init__(self, state: str, total: int, wells: tuple[str, ...]) -> None:
        self.state = state_name(state)
        self.total = total or len(wells)
        self.requested_wells = wells
        self.events: list[WellEvent] = []  # results in arrival order
        self.by_well: dict[str, WellEvent] = {}
        self.running: dict[str, None] = {}  # wells taken, in order taken
        self.phase: tuple[str, int, int] | None = None
        self.error: str | None = None
        self.finished = False
        self.lost = False

    @property
    def ended(self) -> bool:
        """Whether nothing will change any more (finished, or server lost)."""
        return self.finished or self.lost

    def apply(self, event: Event, record: WellEvent | None) -> Applied:
        """Take one event (``record``: its well result, for WellDone/WellFailed)."""
        if self.ended:
            return Applied()
        if isinstance(event, Queued):
            self.state = "queued"
            return Applied()
        if isinstance(event, Finished):
            self.end(state_name(event.state), event.error, event.total)
            return Applied()
        if isinstance(event, _RUNNING_EVENTS):
            self.state = "running"
        if isinstance(event, Started):
            self.total = event.total or self.total
        elif isinstance(event, Progress) and event.phase:
            self.phase = (event.phase, event.done, event.total)
        elif isinstance(event, Progress):
            self.total = event.total or self.total
        elif isinstance(event, WellStarted):
            if event.well in self.by_well or event.well in self.running:
                return Applied()
            self.running[event.well] = None
            return Applied(started=event.well)
        elif record is not None and record.well not in self.by_well:
            self.running.pop(record.well, None)
            self.by_well[record.well] = record
            self.events.append(record)
            return Applied(well=record)
        return Applied()

    def end(self, state: str, error: str | None, total: int) -> None:
        """The run ended as ``state`` (an unknown name counts as failed)."""
        self.state = state if state in FINAL_STATES else "failed"
        self.error = error
        self.total = total or self.total
        self.finished = True
        self.running.clear()

    def lose(self) -> None:
        """The server stopped answering: the run can no longer be followed."""
        if not self.ended:
            self.state = SERVER_LOST
            self.lost = True

    def well_state(self, well: str) -> str:
        """``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.

        Raises
        ------
        KeyError
            ``well`` is not one of this execution's wells.
        """
        record = self.by_well.get(well)
        if record is not None:
            return "done" if record.ok else "failed"
        known = not self.requested_wells or well in self.requested_wells
        if not known and well not in self.running:
            raise KeyError(f"well {well!r} is not part of this execution")
        if self.finished:
            return "failed" if self.state == "failed" else "cancelled"
        return "running" if well in self.running else "queued"
