"""The kernel-side client: connect to an openhcs server, submit, follow results.

>>> conn = connect("tcp://127.0.0.1:7710")            # doctest: +SKIP
>>> run = conn.submit(pipeline, "demo")                # returns at once
>>> run.on_well(lambda well: print(well.well, well.summary))
>>> table = run.result()                               # pandas DataFrame

Threads: one I/O thread per connection owns its ZeroMQ sockets; user
callbacks run on one callback thread per connection, in arrival order. See
``docs/protocol.md`` for the wire protocol underneath.
"""

from __future__ import annotations

from openhcs_nb.client._connect import connect
from openhcs_nb.client._server_choice import (
    ServerExecutionInfo,
    ServerLoad,
    ServerUnreachableWarning,
)
from openhcs_nb.client._wells import PreviewResult, WellEvent
from openhcs_nb.client.connection import Connection
from openhcs_nb.client.errors import (
    ERROR_CLASSES,
    ClientKeyError,
    ConnectionClosed,
    RemoteBusy,
    RemoteCompileError,
    RemoteError,
    RemoteExecutionError,
    RemoteInternalError,
    RemoteNotAuthorized,
    RemotePipelineCodeError,
    RemotePipelineError,
    RemotePlateError,
    RemoteProtocolError,
    RemoteSessionInvalid,
    RemoteTimeout,
    RemoteUnknownExecution,
    RemoteUnknownPlate,
    RemoteUnknownWell,
    ServerLost,
    ServerUnavailable,
    remote_error,
)
from openhcs_nb.client.execution import Execution
from openhcs_nb.client.server_set import ServerSet

__all__ = [
    "ERROR_CLASSES",
    "ClientKeyError",
    "Connection",
    "ConnectionClosed",
    "Execution",
    "PreviewResult",
    "RemoteBusy",
    "RemoteCompileError",
    "RemoteError",
    "RemoteExecutionError",
    "RemoteInternalError",
    "RemoteNotAuthorized",
    "RemotePipelineCodeError",
    "RemotePipelineError",
    "RemotePlateError",
    "RemoteProtocolError",
    "RemoteSessionInvalid",
    "RemoteTimeout",
    "RemoteUnknownExecution",
    "RemoteUnknownPlate",
    "RemoteUnknownWell",
    "ServerExecutionInfo",
    "ServerLoad",
    "ServerLost",
    "ServerSet",
    "ServerUnavailable",
    "ServerUnreachableWarning",
    "WellEvent",
    "connect",
    "remote_error",
]
