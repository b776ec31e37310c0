"""The job store's SQLite file: open it, migrate it, and one write transaction.

Kept apart from :mod:`openhcs_nb.server.jobs` so that module holds only what the
server does with jobs. Opening checks the schema version: an older file is
migrated in place, a newer one or a file that is not a job store refuses to open
(:class:`JobStoreError`), so the server stops for an admin instead of guessing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.server import _jobs_schema as sql


class JobStoreError(OpenHCSError):
    """The job store file cannot be used (corrupt, or from a newer server).

    The server must not start: restarting cannot fix it, an admin must.
    """

    code = "storage_error"


class JobFile:
    """One SQLite connection behind one lock; writes go through :meth:`_write`.

    Raises
    ------
    JobStoreError
        On open, when the file is not a job store or has a newer schema.
    """

    def __init__(
        self, path: Path, *, synchronous: Literal["FULL", "NORMAL"] = "FULL"
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db, version = sql.connect(path, synchronous)
            if version > sql.SCHEMA_VERSION:
                self._db.close()
                raise JobStoreError(
                    f"{path}: job store schema {version} is newer than this "
                    f"server's ({sql.SCHEMA_VERSION}); upgrade openhcs-nb"
                )
            if version == 0:
                with self._write() as db:
                    sql.create_tables(db)
            elif version < sql.SCHEMA_VERSION:
                backup_before_migration(self._db, path, version)
                with self._write() as db:
                    sql.migrate(db, version)
            self._db.execute("SELECT count(*) FROM executions").fetchone()
        except sqlite3.DatabaseError as exc:
            raise JobStoreError(
                f"{path} is not a readable job store ({exc}); restore it from a "
                "backup, or move it away to start with an empty one"
            ) from None

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: committed on return, rolled back on raise."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


def backup_before_migration(db: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copy the store aside before a migration changes it (once per old version).

    A failed or regretted upgrade can then go back: stop the server, move
    ``jobs.sqlite3.schema<N>.bak`` over the store, reinstall the old release.
    SQLite's online backup copies a consistent snapshot, WAL included.
    """
    target = path.with_name(f"{path.name}.schema{version}.bak")
    if not target.exists():
        copy = sqlite3.connect(target)
        try:
            db.backup(copy)
        finally:
            copy.close()
        target.chmod(0o600)
    return target
