"""The answer to ``ServerStatus``: how busy this server is, in totals only.

A client that holds several servers asks each one before it picks where a
submit or a preview goes (:mod:`openhcs_nb.client.server_set`). The reply is
built from the job store, the record every restart keeps, so it counts the
same wells whether they wait in this process's queue or resume after a crash.

Rules:

- Only totals cross the wire: wells still to start, wells on a worker now,
  active executions of every user together, and the caller's own count. No
  other user's id, plate, name or per-user count is ever in the reply.
- The caller is the authenticated :class:`~openhcs_nb.server.peers.Peer`,
  never a name the client sends; the question is audited like any command.
"""

from __future__ import annotations

from openhcs_nb.protocol.messages import ServerStatusReply
from openhcs_nb.server.job_states import WellState
from openhcs_nb.server.jobs import JobStore


def server_status_reply(
    rid: int, store: JobStore, workers: int, user: str
) -> ServerStatusReply:
    """The load of the server whose job store is ``store``, as seen by ``user``."""
    active = store.list_executions(None, include_finished=False)
    queued = running = 0
    for record in active:
        for well in store.wells(record.id):
            queued += well.state is WellState.PENDING
            running += well.state is WellState.RUNNING
    return ServerStatusReply(
        rid=rid,
        workers=workers,
        queued_wells=queued,
        running_wells=running,
        active_executions=len(active),
        user_active_executions=sum(record.user == user for record in active),
    )
