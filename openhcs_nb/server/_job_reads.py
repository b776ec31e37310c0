"""The reads of the job store: records, wells, events, and raw access for presets.

:class:`JobStoreReads` is the read half of :class:`~openhcs_nb.server.jobs.JobStore`
(every call takes the store's one lock and is short); the write half, with
its state checks, lives in ``jobs.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from openhcs_nb.server import _job_moves as moves
from openhcs_nb.server import _jobs_schema as sql
from openhcs_nb.server._job_file import JobFile
from openhcs_nb.server.job_records import ExecutionRecord, StoredEvent, WellRecord
from openhcs_nb.server.job_states import WellState


class JobStoreReads(JobFile):
    """Read access to executions, wells and events."""

    # -- reads -------------------------------------------------------------------

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        """Return the execution, or None when the id is unknown."""
        with self._lock:
            rows = sql.select_executions(self._db, execution_id=execution_id)
        return moves.execution_record(rows[0]) if rows else None

    def list_executions(
        self, user: str | None = None, *, include_finished: bool = True
    ) -> list[ExecutionRecord]:
        """Return executions oldest first: all, one user's, and/or only active ones."""
        states = None if include_finished else moves.ACTIVE_NAMES
        with self._lock:
            rows = sql.select_executions(self._db, user=user, states=states)
        return [moves.execution_record(row) for row in rows]

    def wells(self, execution_id: str) -> list[WellRecord]:
        """Return every well of an execution, in the order submitted."""
        with self._lock:
            rows = sql.select_wells(self._db, execution_id)
        return [WellRecord(row[0], WellState[row[1]], *row[2:]) for row in rows]

    def pending_wells(self, execution_id: str) -> list[str]:
        """Return the PENDING wells of an execution, in the order submitted."""
        with self._lock:
            return sql.wells_in(self._db, execution_id, WellState.PENDING.name)

    def events_since(
        self,
        execution_id: str,
        since_seq: int,
        limit: int = 1000,
        *,
        include_arrays: bool = True,
    ) -> list[StoredEvent]:
        """Return logged events with ``seq > since_seq`` in order, ``limit`` at most."""
        with self._lock:
            rows = sql.select_events(
                self._db, execution_id, since_seq, limit, include_arrays=include_arrays
            )
        return [StoredEvent(execution_id, *row) for row in rows]

    def omero_executions(
        self, omero_user: str, *, include_finished: bool = True
    ) -> list[ExecutionRecord]:
        """Executions run for one OMERO user, whichever key started them (web)."""
        records = self.list_executions(include_finished=include_finished)
        return [r for r in records if r.omero_user == omero_user]

    # -- other tables of the same file (presets) ---------------------------------

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the store's lock, for a short read."""
        with self._lock:
            yield self._db

    def writing(self) -> AbstractContextManager[sqlite3.Connection]:
        """One IMMEDIATE write transaction, as the store's own writes use."""
        return self._write()

    def count_active(self, user: str) -> int:
        """Count the user's QUEUED, RUNNING and INTERRUPTED executions (quotas)."""
        with self._lock:
            return len(
                sql.select_executions(self._db, user=user, states=moves.ACTIVE_NAMES)
            )
