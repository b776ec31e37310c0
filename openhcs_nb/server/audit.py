"""Append-only audit log: one JSON object per line, one line per decision.

Rules: every command that changes or reveals state, accepted or refused, is
recorded with who (user and connection), what and the outcome.
Each entry is written with a single ``write`` on a file opened for appending and
flushed before :meth:`AuditLog.record` returns; with ``fsync=True`` it is also on
disk. Values that JSON cannot encode are written as their ``str()`` so that
auditing never fails the request it records. The file is created mode 0640.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class AuditEntry:
    """One audit line; ``time`` is ISO 8601 in UTC."""

    time: str
    user: str
    action: str
    outcome: str
    execution_id: str | None = None
    plate: str | None = None
    pipeline_hash: str | None = None
    detail: str | Mapping[str, Any] | None = None
    peer: str | None = None
    omero_user: str | None = None


class AuditLog:
    """Thread-safe appender of :class:`AuditEntry` lines to one file."""

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fsync = fsync
        self._lock = threading.Lock()
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._file: TextIO = os.fdopen(descriptor, "a", encoding="utf-8")

    def record(
        self,
        *,
        user: str,
        action: str,
        outcome: str,
        execution_id: str | None = None,
        plate: str | None = None,
        pipeline_hash: str | None = None,
        detail: str | Mapping[str, Any] | None = None,
        peer: str | None = None,
        omero_user: str | None = None,
    ) -> AuditEntry:
        """Append one entry (e.g. action ``submit``, outcome ``accepted``).

        Raises
        ------
        OSError
            When the file cannot be written (disk full); the caller decides
            whether the request may go on unaudited.
        """
        entry = AuditEntry(
            time=datetime.datetime.now(datetime.timezone.utc).isoformat(),
            user=user,
            action=action,
            outcome=outcome,
            execution_id=execution_id,
            plate=plate,
            pipeline_hash=pipeline_hash,
            detail=detail,
            peer=peer,
            omero_user=omero_user,
        )
        line = json.dumps(asdict(entry), default=str, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
        return entry

    def close(self) -> None:
        """Close the file; later records raise ``ValueError``."""
        with self._lock:
            self._file.close()

    def __enter__(self) -> AuditLog:
        """Use the log as a context manager that closes it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the log."""
        self.close()


def read_audit(path: Path) -> list[AuditEntry]:
    """Read every entry back, oldest first (for tests and reports).

    Raises
    ------
    ValueError
        When a line is not a JSON audit entry; the message names the line.
    """
    entries = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                entries.append(AuditEntry(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}, line {number}: {exc}") from None
    return entries
