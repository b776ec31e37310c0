"""SQLite schema and raw row access for the job store (``server/jobs.py``).

The helpers here only read and write rows; they know nothing of the state tables.
``JobStore`` checks every change before calling them, inside its own transaction.

Rules: states are stored as enum NAMES (text), never integers, so a reordered enum
cannot corrupt old rows. Times are Unix seconds (REAL). A schema change bumps
``SCHEMA_VERSION`` (kept in ``PRAGMA user_version``) and adds a migration step;
a database from a newer version is refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 3

PRESETS_DDL = """CREATE TABLE IF NOT EXISTS presets (
    scope        TEXT NOT NULL,
    name         TEXT NOT NULL,
    code         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    owner        TEXT NOT NULL,
    group_id     INTEGER,
    group_name   TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (scope, name)
)"""

_DDL = """
CREATE TABLE IF NOT EXISTS executions (
    id            TEXT PRIMARY KEY,
    user          TEXT NOT NULL,
    plate         TEXT NOT NULL,
    pipeline_code TEXT NOT NULL,
    pipeline_hash TEXT NOT NULL,
    options_json  TEXT NOT NULL,
    state         TEXT NOT NULL,
    submitted_at  REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    error         TEXT,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    total         INTEGER NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    cancelled     INTEGER NOT NULL DEFAULT 0,
    omero_user    TEXT,
    stream_key    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS executions_by_state ON executions (state);
CREATE INDEX IF NOT EXISTS executions_by_user ON executions (user, state);

CREATE TABLE IF NOT EXISTS wells (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    well         TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    started_at   REAL,
    finished_at  REAL,
    summary      BLOB,
    error        TEXT,
    traceback    TEXT,
    PRIMARY KEY (execution_id, well)
);

CREATE TABLE IF NOT EXISTS events (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    payload      BLOB NOT NULL,
    arrays       BLOB,
    created_at   REAL NOT NULL,
    PRIMARY KEY (execution_id, seq)
);
"""

# executescript() would COMMIT the caller's transaction, so run statements one by one.
SCHEMA: tuple[str, ...] = tuple(
    statement.strip()
    for statement in f"{_DDL};{PRESETS_DDL}".split(";")
    if statement.strip()
)

EXECUTION_COLUMNS = (
    "id, user, plate, pipeline_code, pipeline_hash, options_json, state, "
    "submitted_at, started_at, finished_at, error, last_seq, total, done, failed, "
    "cancelled, omero_user, stream_key"
)
WELL_COLUMNS = (
    "well, state, attempt, started_at, finished_at, summary, error, traceback"
)


def connect(path: Path, synchronous: str) -> tuple[sqlite3.Connection, int]:
    """Open the file in autocommit mode (transactions are explicit) with WAL on.

    Returns the connection and the schema version found (0 for a new file).
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=5000")
    return db, int(db.execute("PRAGMA user_version").fetchone()[0])


#: Steps that bring a store of version ``n`` to ``n + 1``, each run in the
#: caller's transaction. Version 2: executions remember their OMERO user and
#: the stream key that authorises their event subscriptions. Version 3: the
#: ``presets`` table of saved pipelines.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE executions ADD COLUMN omero_user TEXT",
        "ALTER TABLE executions ADD COLUMN stream_key TEXT NOT NULL DEFAULT ''",
        "UPDATE executions SET stream_key = lower(hex(randomblob(16)))",
    ),
    2: (PRESETS_DDL,),
}


def migrate(db: sqlite3.Connection, version: int) -> None:
    """Upgrade a store from ``version`` to ``SCHEMA_VERSION`` (caller's transaction)."""
    for step in range(version, SCHEMA_VERSION):
        for statement in MIGRATIONS[step]:
            db.execute(statement)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def create_tables(db: sqlite3.Connection) -> None:
    """Create the tables (inside the caller's transaction) and stamp the version."""
    for statement in SCHEMA:
        db.execute(statement)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def execution_row(db: sqlite3.Connection, execution_id: str) -> tuple[Any, ...] | None:
    """Return ``(state, total, done, failed, cancelled, last_seq)`` or None."""
    return db.execute(
        "SELECT state, total, done, failed, cancelled, last_seq FROM executions "
        "WHERE id = ?",
        (execution_id,),
    ).fetchone()


def write_execution_state(
    db: sqlite3.Connection,
    execution_id: str,
    state: str,
    *,
    started: bool,
    finished: bool,
    error: str | None,
) -> None:
    """Store a new state; stamp ``started_at`` once and ``finished_at`` on ends."""
    now = time.time()
    db.execute(
        "UPDATE executions SET state = ?, "
        "started_at = CASE WHEN ? AND started_at IS NULL THEN ? ELSE started_at END, "
        "finished_at = CASE WHEN ? THEN ? ELSE finished_at END, "
        "error = COALESCE(?, error) WHERE id = ?",
        (state, started, now, finished, now, error, execution_id),
    )


def well_state(db: sqlite3.Connection, execution_id: str, well: str) -> str | None:
    """Return the stored state name of one well, or None if it is not there."""
    row = db.execute(
        "SELECT state FROM wells WHERE execution_id = ? AND well = ?",
        (execution_id, well),
    ).fetchone()
    return row[0] if row else None


def write_well(
    db: sqlite3.Connection, execution_id: str, well: str, **columns: Any
) -> None:
    """Update named columns of one well (names come from this package only)."""
    assignments = ", ".join(f"{name} = ?" for name in columns)
    db.execute(
        f"UPDATE wells SET {assignments} WHERE execution_id = ? AND well = ?",
        (*columns.values(), execution_id, well),
    )


def add_to_counter(
    db: sqlite3.Connection,
    execution_id: str,
    counter: Literal["done", "failed", "cancelled"],
    amount: int = 1,
) -> None:
    """Keep the execution's done/failed/cancelled counters in step with wells."""
    db.execute(
        f"UPDATE executions SET {counter} = {counter} + ? WHERE id = ?",
        (amount, execution_id),
    )


def insert_event(
    db: sqlite3.Connection,
    execution_id: str,
    seq: int,
    kind: str,
    payload: bytes,
    arrays: bytes | None,
) -> None:
    """Store one event row and advance the execution's ``last_seq`` to it."""
    db.execute(
        "INSERT INTO events (execution_id, seq, kind, payload, arrays, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (execution_id, seq, kind, payload, arrays, time.time()),
    )
    db.execute("UPDATE executions SET last_seq = ? WHERE id = ?", (seq, execution_id))


def wells_in(db: sqlite3.Connection, execution_id: str, state: str) -> list[str]:
    """Return the wells of one execution in a given state, in submission order."""
    rows = db.execute(
        "SELECT well FROM wells WHERE execution_id = ? AND state = ? ORDER BY rowid",
        (execution_id, state),
    ).fetchall()
    return [row[0] for row in rows]


def insert_execution(
    db: sqlite3.Connection, values: dict[str, Any], wells: list[str], well_state: str
) -> None:
    """Insert one execution row (``values`` keyed by column) and its well rows."""
    names = ", ".join(values)
    marks = ", ".join("?" * len(values))
    db.execute(
        f"INSERT INTO executions ({names}) VALUES ({marks})", tuple(values.values())
    )
    db.executemany(
        "INSERT INTO wells (execution_id, well, state) VALUES (?, ?, ?)",
        [(values["id"], well, well_state) for well in wells],
    )


def delete_execution(
    db: sqlite3.Connection, execution_id: str, states: tuple[str, ...]
) -> bool:
    """Delete one execution in ``states`` with its wells and events."""
    marks = ", ".join("?" * len(states))
    row = db.execute(
        f"SELECT 1 FROM executions WHERE id = ? AND state IN ({marks})",
        (execution_id, *states),
    ).fetchone()
    if row is None:
        return False
    for table, column in (("events", "execution_id"), ("wells", "execution_id")):
        db.execute(f"DELETE FROM {table} WHERE {column} = ?", (execution_id,))
    db.execute("DELETE FROM executions WHERE id = ?", (execution_id,))
    return True


def select_executions(
    db: sqlite3.Connection,
    *,
    execution_id: str | None = None,
    user: str | None = None,
    states: tuple[str, ...] | None = None,
) -> list[tuple[Any, ...]]:
    """Return execution rows (``EXECUTION_COLUMNS``) oldest first, filtered."""
    query = f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE 1 = 1"
    params: list[str] = []
    for column, value in (("id", execution_id), ("user", user)):
        if value is not None:
            query += f" AND {column} = ?"
            params.append(value)
    if states is not None:
        query += f" AND state IN ({', '.join('?' * len(states))})"
        params.extend(states)
    return db.execute(f"{query} ORDER BY submitted_at, rowid", params).fetchall()


def select_wells(db: sqlite3.Connection, execution_id: str) -> list[tuple[Any, ...]]:
    """Return the well rows (``WELL_COLUMNS``) of one execution, in order."""
    return db.execute(
        f"SELECT {WELL_COLUMNS} FROM wells WHERE execution_id = ? ORDER BY rowid",
        (execution_id,),
    ).fetchall()


def select_events(
    db: sqlite3.Connection,
    execution_id: str,
    since_seq: int,
    limit: int,
    *,
    include_arrays: bool,
) -> list[tuple[Any, ...]]:
    """Return ``(seq, kind, payload, arrays)`` rows after ``since_seq``, in order."""
    arrays = "arrays" if include_arrays else "NULL"
    return db.execute(
        f"SELECT seq, kind, payload, {arrays} FROM events "
        "WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (execution_id, since_seq, limit),
    ).fetchall()
