"""The SQLite file of :class:`SQLiteSnapshotStore`: opening it, its table, and its free space.

The file is opened in WAL mode and holds one table, ``microscheduler_snapshots``, one row
per key. A new file is created with ``PRAGMA auto_vacuum=INCREMENTAL``, and
:func:`reclaim_free_pages` runs ``PRAGMA incremental_vacuum`` after a delete that freed
pages, so the file shrinks back when a large snapshot is deleted (at the next WAL
checkpoint: SQLite's automatic one, or when the last connection closes) instead of
keeping its largest size for ever. A file created by an earlier version, or by the
application with its own tables, keeps its ``auto_vacuum`` mode: SQLite changes it only
by rewriting the whole file (``VACUUM``), which the store never does behind the
application's back; it then reuses freed pages but never gives them back.
"""

from __future__ import annotations

import sqlite3
import time

from ._exceptions import ConfigError

__all__ = ("TABLE", "connect", "reclaim_free_pages")

TABLE = "microscheduler_snapshots"
_COLUMNS = ("key", "data", "saved_at")
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    key TEXT PRIMARY KEY NOT NULL,
    data BLOB NOT NULL,
    saved_at REAL NOT NULL
)"""
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def reclaim_free_pages(connection: sqlite3.Connection) -> None:
    """Give the file's free pages back to the file system, if its mode allows it.

    Runs in its own transaction, after the delete's has committed: the delete is durable
    whether or not this succeeds. Does nothing when no page is free (a small snapshot
    lives inside its table page), so deleting small snapshots costs no extra write.
    """
    auto_vacuum = connection.execute("PRAGMA auto_vacuum").fetchone()[0]
    if auto_vacuum != _INCREMENTAL or not connection.execute("PRAGMA freelist_count").fetchone()[0]:
        return
    # executescript steps the pragma to its end; execute() would free at most one page.
    connection.executescript("PRAGMA incremental_vacuum;")


def connect(path: str, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
    """Open ``path`` in WAL mode, make sure it is writable and holds the snapshot table.

    A new file is made with ``auto_vacuum=INCREMENTAL`` (see the module docstring).

    Raises ConfigError (with the sqlite3 or OS error as its cause) when it cannot.
    """
    try:
        # isolation_level=None: no implicit transactions; every write says BEGIN IMMEDIATE.
        # check_same_thread=False: anyio may run successive calls on different worker
        # threads; the store's lock guarantees one thread at a time.
        connection = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except (sqlite3.Error, OSError) as exc:
        raise _config_error(path, exc) from exc
    try:
        # Only before the file's first table: a file SQLite has laid out keeps its mode.
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = _enable_wal(connection, busy_timeout)
        if str(mode).lower() != "wal":
            raise ConfigError(
                f"snapshot store {path!r} cannot use write-ahead logging (journal mode "
                f"stays {mode!r}); give SQLiteSnapshotStore the path of a file on disk"
            )
        connection.execute(f"PRAGMA synchronous={synchronous}")
        # A real write transaction proves the file and its directory are writable now,
        # not at the first checkpoint.
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(_SCHEMA)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        columns = tuple(row[1] for row in connection.execute(f"PRAGMA table_info({TABLE})"))
        if columns != _COLUMNS:
            raise ConfigError(
                f"snapshot store {path!r} has a table {TABLE} with columns {columns}, "
                f"expected {_COLUMNS}; use another file or drop that table"
            )
    except ConfigError:
        connection.close()
        raise
    except (sqlite3.Error, OSError) as exc:
        connection.close()
        raise _config_error(path, exc) from exc
    return connection


def _enable_wal(connection: sqlite3.Connection, busy_timeout: float) -> str:
    """Switch to WAL, retrying within the busy timeout: changing the journal mode skips
    SQLite's busy handler, so two processes opening one new file may see "locked" at once."""
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            return str(connection.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)  # a blocking retry: connect always runs in a worker thread
        delay = min(delay * 2, 0.05)


def _config_error(path: str, exc: BaseException) -> ConfigError:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return ConfigError(
            f"snapshot store {path!r} is not an SQLite database ({text}); "
            "give SQLiteSnapshotStore a new path or one of its own files"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return ConfigError(
            f"snapshot store {path!r} cannot be opened for writing ({text}); "
            "check that its directory exists and that the file and directory are writable"
        )
    return ConfigError(f"snapshot store {path!r} cannot be used: {text}")
