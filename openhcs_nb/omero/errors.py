"""Errors of the OMERO integration, and the translation of omero-py's own.

``translate_errors`` turns exceptions raised by omero-py or Ice into errors of
the :class:`~openhcs_nb.errors.OpenHCSError` tree, so that a server can answer
with a stable code (``not_authorized``, ``session_invalid``...) and never
leaks a Java stack trace to a client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from openhcs_nb.errors import OpenHCSError, PlateError


class NotAuthorizedError(OpenHCSError, PermissionError):
    """The OMERO user may not read (or annotate) this object."""

    code = "not_authorized"


class SessionInvalidError(NotAuthorizedError):
    """The OMERO session key is unknown, expired or was closed."""

    code = "session_invalid"


class OmeroUnavailableError(PlateError):
    """The OMERO server cannot be reached (refused, lost, timed out)."""

    code = "plate_error"


class WritebackError(OpenHCSError, RuntimeError):
    """Results could not be written to OMERO; they remain in the local store."""

    code = "execution_error"


def _message(exc: BaseException) -> str:
    """The server's one-line message of an omero exception, else ``str(exc)``."""
    text = getattr(exc, "message", None)
    if isinstance(text, str) and text:
        return text.strip().splitlines()[0]
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@contextmanager
def translate_errors(what: str, where: str) -> Iterator[None]:
    """Re-raise omero-py/Ice failures during ``what`` as our errors.

    ``where`` names the server (``host:port``) for the messages.

    Raises
    ------
    NotAuthorizedError
        omero.SecurityViolation: the user may not see or change the object.
    SessionInvalidError
        The session is gone (expired, killed, or never existed).
    OmeroUnavailableError
        The connection was refused or lost.
    """
    try:
        yield
    except OpenHCSError:
        raise
    except Exception as exc:
        mapped = _map(exc, what, where)
        if mapped is None:
            raise
        raise mapped from exc


def _map(exc: Exception, what: str, where: str) -> OpenHCSError | None:
    try:
        import Glacier2
        import Ice
        import omero
        import omero_ServerErrors_ice  # noqa: F401 - defines omero.SecurityViolation
    except ImportError:  # pragma: no cover - the omero extra is missing
        return None
    text = _message(exc)
    refused = isinstance(exc, omero.SecurityViolation) or (
        # RawPixelsStore.setPixelsId says so for Pixels the user may not read
        isinstance(exc, omero.ValidationException) and text.startswith("Cannot read")
    )
    if refused:
        return NotAuthorizedError(f"{what}: OMERO at {where} refused: {text}")
    gone = (
        omero.SessionException,
        Ice.ObjectNotExistException,
        Glacier2.SessionNotExistException,
    )
    if isinstance(exc, gone):
        return SessionInvalidError(
            f"{what}: the OMERO session on {where} is no longer valid "
            f"({type(exc).__name__}); log in again and resubmit"
        )
    if isinstance(exc, (Ice.ConnectFailedException, Ice.DNSException)):
        return OmeroUnavailableError(
            f"{what}: cannot connect to OMERO at {where} ({type(exc).__name__})"
        )
    lost = (Ice.ConnectionLostException, Ice.SocketException, Ice.TimeoutException)
    if isinstance(exc, lost):
        return OmeroUnavailableError(
            f"{what}: lost the connection to OMERO at {where} ({type(exc).__name__})"
        )
    return None
