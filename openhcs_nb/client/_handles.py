"""One live :class:`~openhcs_nb.client.execution.Execution` per id and connection.

Rules:

- Handles are held weakly: one nobody holds any more is forgotten, with its
  kept previews, and a later ``attach`` fetches its wells again.
- A handle that ended because the server was lost is replaced by a fresh one
  on the next ``attach``: the old one keeps saying what happened, the new one
  follows the run again from seq 0.
- :meth:`Handles.adopt` runs on the I/O thread (it is called from a reply
  handler, so following starts before the caller sees the handle); the rest
  may be called from any thread.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from openhcs_nb.client.execution import Execution

if TYPE_CHECKING:
    from openhcs_nb.client._dispatch import CallbackThread
    from openhcs_nb.client._preview_cache import PreviewCache
    from openhcs_nb.client.connection import Connection


class Handles:
    """The execution handles of one connection, keyed by execution id."""

    def __init__(
        self,
        connection: Connection,
        dispatcher: CallbackThread,
        previews: PreviewCache[tuple[str, str]],
    ) -> None:
        self._connection = connection
        self._dispatcher = dispatcher
        self._previews = previews
        self._lock = threading.Lock()
        self._by_id: weakref.WeakValueDictionary[str, Execution] = (
            weakref.WeakValueDictionary()
        )

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, execution_id: object) -> bool:
        with self._lock:
            return execution_id in self._by_id

    def live(self, execution_id: str) -> Execution | None:
        """The handle of ``execution_id`` unless it is gone or lost its server."""
        with self._lock:
            known = self._by_id.get(execution_id)
        return None if known is None or known.server_lost else known

    def adopt(self, execution_id: str, plate: str, **fields: Any) -> Execution:
        """The one live handle of ``execution_id``, made now if needed."""
        with self._lock:
            execution = self._by_id.get(execution_id)
            if execution is not None and not execution.server_lost:
                return execution
            execution = Execution(
                self._connection,
                execution_id,
                plate,
                dispatcher=self._dispatcher,
                previews=self._previews,
                **fields,
            )
            self._by_id[execution_id] = execution
        weakref.finalize(execution, self._forget_previews, execution_id)
        return execution

    def detach_all(self) -> None:
        """The connection closed: wake everyone waiting on a handle."""
        with self._lock:
            executions = list(self._by_id.values())
        for execution in executions:
            execution._detach()

    def _forget_previews(self, execution_id: str) -> None:
        """Drop the kept previews of a forgotten handle (unless it was replaced)."""
        with self._lock:
            if execution_id in self._by_id:
                return
        self._previews.discard_if(lambda key: key[0] == execution_id)
