"""Errors a server reported, and errors of reaching it, as a typed tree.

Rules:

- Every error the client raises starts at :class:`RemoteError`
  (itself an :class:`~openhcs_nb.errors.OpenHCSError`) and carries the wire
  ``code``, the server's ``remote_traceback`` (or None) and ``details``.
- ``ErrorReply.code`` picks the class through the plain dict ``ERROR_CLASSES``;
  an unknown code (a newer server) still becomes a :class:`RemoteError`.
- Located errors expose their location as attributes (``line``/``col``,
  ``step``/``field``/``key``, ``well``), read from ``details``.
- IPython calls ``_render_traceback_`` and shows the *server's* traceback and
  the one-line message, not the client's own stack of futures and threads.
- Not reaching the server is :class:`ServerUnavailable` (never sent) or
  :class:`RemoteTimeout` (sent, no reply); the connection survives both.
"""

from __future__ import annotations

from collections.abc import Mapping

from openhcs_nb.errors import OpenHCSError


class RemoteError(OpenHCSError):
    """The server refused a request or failed; ``code`` says why."""

    code = "remote_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        remote_traceback: str | None = None,
        details: Mapping[str, str | int | None] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.message = message
        self.remote_traceback = remote_traceback or None
        self.details: dict[str, str | int | None] = dict(details or {})
        super().__init__(message)

    def _render_traceback_(self) -> list[str]:
        """Lines IPython shows instead of the local stack: remote frames, then why."""
        lines: list[str] = []
        if self.remote_traceback:
            lines.append("Traceback on the openhcs server:")
            lines.extend(self.remote_traceback.rstrip().splitlines())
            lines.append("")
        lines.append(f"{type(self).__name__} [{self.code}]: {self.message}")
        return lines

    def _detail_int(self, key: str) -> int | None:
        value = self.details.get(key)
        return value if isinstance(value, int) else None

    def _detail_str(self, key: str) -> str | None:
        value = self.details.get(key)
        return None if value is None else str(value)


class RemoteProtocolError(RemoteError):
    """A message could not be read by one side (version, size, schema, array)."""

    code = "malformed"


class RemotePipelineCodeError(RemoteError, ValueError):
    """The server's safe loader refused the pipeline code at ``line``/``col``."""

    code = "bad_pipeline_code"

    @property
    def line(self) -> int | None:
        """1-based line of the refused construct in the pipeline code."""
        return self._detail_int("line")

    @property
    def col(self) -> int | None:
        """Column of the refused construct."""
        return self._detail_int("col")


class RemotePipelineError(RemoteError, ValueError):
    """A step or parameter is invalid (``step``/``field``)."""

    code = "invalid_pipeline"

    @property
    def step(self) -> str | None:
        """The step at fault, when known."""
        return self._detail_str("step")

    @property
    def field(self) -> str | None:
        """The field of the step at fault, when known."""
        return self._detail_str("field")


class RemoteCompileError(RemoteError, ValueError):
    """The pipeline does not fit the plate (``step``/``key``)."""

    code = "compile_error"

    @property
    def step(self) -> str | None:
        """The step that does not fit, when known."""
        return self._detail_str("step")

    @property
    def key(self) -> str | None:
        """The component key (e.g. a channel) that does not fit, when known."""
        return self._detail_str("key")


class RemotePlateError(RemoteError, LookupError):
    """The plate exists but its layout or pixels could not be read."""

    code = "plate_error"


class RemoteUnknownPlate(RemotePlateError):
    """No plate of that name or id is visible to this user."""

    code = "unknown_plate"


class RemoteUnknownWell(RemotePlateError):
    """The well is not on the plate (``well``)."""

    code = "unknown_well"

    @property
    def well(self) -> str | None:
        """The well that is not on the plate."""
        return self._detail_str("well")


class RemoteUnknownExecution(RemoteError, LookupError):
    """No execution with that id is visible to this user."""

    code = "unknown_execution"


class RemoteNotAuthorized(RemoteError, PermissionError):
    """The user may not do this (plate permissions, someone else's run)."""

    code = "not_authorized"


class RemoteSessionInvalid(RemoteNotAuthorized):
    """The OMERO session key is unknown or expired; connect again with a new one."""

    code = "session_invalid"


class RemoteFrontendNeedsSession(RemoteNotAuthorized):
    """A web front-end key did not (or no longer) present a live OMERO session."""

    code = "frontend_needs_session"


class RemoteUnknownPreset(RemoteError, LookupError):
    """No preset of that name is visible to this user."""

    code = "unknown_preset"


class RemotePresetExists(RemoteError, ValueError):
    """A preset of that name exists already; save with ``replace=True``."""

    code = "preset_exists"


class RemoteBusy(RemoteError):
    """Quota, rate limit or capacity reached; retry later (``retry_after``)."""

    code = "busy"

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asks to wait, when it said."""
        text = self._detail_str("retry_after")
        try:
            return float(text) if text is not None else None
        except ValueError:
            return None


class RemoteInternalError(RemoteError):
    """The server itself failed; ``incident`` names the entry in its log."""

    code = "internal"

    @property
    def incident(self) -> str | None:
        """The id under which the server logged what went wrong."""
        value = self.details.get("incident")
        return str(value) if value is not None else None


class RemoteStorageError(RemoteError, OSError):
    """The server could not write to its disk (full?); nothing was started."""

    code = "storage_error"


class RemoteWellTimeout(RemoteError, TimeoutError):
    """A preview ran longer than the server allows."""

    code = "well_timeout"


class RemoteExecutionError(RemoteError, RuntimeError):
    """An accepted execution failed as a whole (e.g. compile error after accept)."""

    code = "execution_failed"


class ServerUnavailable(RemoteError, ConnectionError):
    """The request could not be delivered: no server, or the key is wrong."""

    code = "unavailable"


class RemoteTimeout(ServerUnavailable, TimeoutError):
    """The request was sent but no reply came in time."""

    code = "timeout"


class ConnectionClosed(ServerUnavailable):
    """The connection was closed in this process; open a new one."""

    code = "closed"


class ServerLost(ServerUnavailable):
    """The server stopped answering while executions ran; they may go on there.

    The handle of each live execution ends with this error (its state reads
    ``"server lost"``); once the server is back, ``attach`` its id again.
    """

    code = "server_lost"


class ClientKeyError(OpenHCSError, ValueError):
    """A key or key file given to ``connect`` cannot be used; the message says why."""

    code = "bad_key"


#: Class of each wire error code; codes missing here become ``RemoteError``.
ERROR_CLASSES: dict[str, type[RemoteError]] = {
    "malformed": RemoteProtocolError,
    "too_large": RemoteProtocolError,
    "version_mismatch": RemoteProtocolError,
    "bad_array": RemoteProtocolError,
    "unknown_command": RemoteProtocolError,
    "bad_pipeline_code": RemotePipelineCodeError,
    "invalid_pipeline": RemotePipelineError,
    "compile_error": RemoteCompileError,
    "unknown_plate": RemoteUnknownPlate,
    "unknown_well": RemoteUnknownWell,
    "plate_error": RemotePlateError,
    "unknown_execution": RemoteUnknownExecution,
    "not_authorized": RemoteNotAuthorized,
    "session_invalid": RemoteSessionInvalid,
    "quota_exceeded": RemoteBusy,
    "rate_limited": RemoteBusy,
    "busy": RemoteBusy,
    "storage_error": RemoteStorageError,
    "well_timeout": RemoteWellTimeout,
    "untrusted_code": RemoteNotAuthorized,
    "internal": RemoteInternalError,
    "frontend_needs_session": RemoteFrontendNeedsSession,
    "unknown_preset": RemoteUnknownPreset,
    "preset_exists": RemotePresetExists,
}


def remote_error(
    code: str,
    message: str,
    remote_traceback: str | None = None,
    details: Mapping[str, str | int | None] | None = None,
) -> RemoteError:
    """The typed error for a wire ``code`` (``RemoteError`` for unknown codes)."""
    cls = ERROR_CLASSES.get(code, RemoteError)
    return cls(message, code=code, remote_traceback=remote_traceback, details=details)
