"""Errors the server sends back when it refuses or cannot finish work.

Each has a stable ``code`` for the wire; the message names the limit or the
cause, so the person reading it knows what to change or wait for.
"""

from __future__ import annotations

from openhcs_nb.errors import OpenHCSError


class QuotaExceededError(OpenHCSError):
    """The user already has as much work queued or running as the server allows.

    Nothing was queued; the user may retry once some of their work ends.
    """

    code = "quota_exceeded"


class RateLimitedError(OpenHCSError):
    """The user sent more requests than the server accepts per unit of time."""

    code = "rate_limited"


class StorageError(OpenHCSError):
    """The job store or a results store could not be written (e.g. disk full)."""

    code = "storage_error"
