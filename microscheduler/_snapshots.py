"""Snapshot stores: where a keyed task's checkpoints live, in memory or in an SQLite file.

A task with a ``key`` writes every ``save_state`` through to the executor's store and, on a
first run without ``saved_state``, restores what the store holds for its key; so a process
that submits the same key after a crash resumes where the killed one stopped.

:class:`SQLiteSnapshotStore` invariants:

- One connection, used by one thread at a time: a ``threading.Lock`` serialises every call
  (whatever loop or thread makes it), and a ``CapacityLimiter(1)`` per event loop keeps the
  calls waiting for that lock on the loop rather than in parked worker threads.
- Every blocking call runs in a worker thread through ``anyio.to_thread.run_sync``. A call
  under way is never torn by a cancellation: cancelled through an anyio cancel scope (as
  the executor cancels runs), the caller waits for the thread to finish; cancelled by a
  plain ``Task.cancel()``, the caller returns at once and the thread still commits or
  rolls back, holding the lock, before the next call runs.
- Each write is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction in WAL mode with
  ``synchronous=FULL`` by default: on disk when ``save`` returns; a failed write is rolled
  back, leaving the previous snapshot. ``BEGIN IMMEDIATE`` takes the write lock up front,
  so another process holding it makes this one wait (``busy_timeout``), not fail.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Literal, Protocol, Self, TypeVar, runtime_checkable

import anyio
import anyio.to_thread

from ._logging import logger
from ._sqlite_file import TABLE, connect, reclaim_free_pages

__all__ = ("MemorySnapshotStore", "SQLiteSnapshotStore", "SnapshotStore")


T = TypeVar("T")

_UPSERT = (
    f"INSERT INTO {TABLE} (key, data, saved_at) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET data = excluded.data, saved_at = excluded.saved_at"
)


@runtime_checkable
class SnapshotStore(Protocol):
    """Where the snapshots of keyed tasks are kept (one per key), all async.

    An executor opens its store at ``start()`` when it has an ``async open()`` (a no-op when
    open), and never closes a store passed in ``WorkerConfig``: that is its caller's.
    """

    async def load(self, key: str) -> bytes | None:
        """Return the snapshot stored under ``key``, or None if there is none."""
        ...

    async def save(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there; durable once it returns."""
        ...

    async def delete(self, key: str) -> None:
        """Forget the snapshot of ``key`` (nothing happens if there is none)."""
        ...

    async def close(self) -> None:
        """Release the store's resources; idempotent."""
        ...


# Set after the class body: in it, a protocol would take the name for one of its members.
SnapshotStore.__module__ = "microscheduler"


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"snapshot key must be a str, got {type(key).__name__}")
    return key


def _check_data(data: object) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"snapshot data must be bytes, got {type(data).__name__}")
    return bytes(data)


def _closed_error(store: object) -> RuntimeError:
    return RuntimeError(
        f"{type(store).__name__} is closed; reopen it with `await store.open()` "
        "(an executor does this at start())"
    )


class MemorySnapshotStore:
    """Snapshots in this process's memory: the default, lost when the process ends.

    Closing it keeps the snapshots (``open()`` makes them usable again); only the process
    ending forgets them. Use :class:`SQLiteSnapshotStore` to survive a crash or a restart.
    """

    __module__ = "microscheduler"

    def __init__(self) -> None:
        self._snapshots: dict[str, bytes] = {}
        self._state = _State.NEW

    def __repr__(self) -> str:
        return f"<MemorySnapshotStore {self._state.value} snapshots={len(self._snapshots)}>"

    def _check_usable(self) -> None:
        if self._state is _State.CLOSED:
            raise _closed_error(self)

    async def open(self) -> None:
        """Make the store usable (again, after :meth:`close`)."""
        self._state = _State.OPEN

    async def load(self, key: str) -> bytes | None:
        """Return the snapshot stored under ``key``, or None if there is none."""
        self._check_usable()
        return self._snapshots.get(_check_key(key))

    async def save(self, key: str, data: bytes) -> None:
        """Keep a copy of ``data`` under ``key``, replacing what was there."""
        self._check_usable()
        self._snapshots[_check_key(key)] = _check_data(data)

    async def delete(self, key: str) -> None:
        """Forget the snapshot of ``key`` (nothing happens if there is none)."""
        self._check_usable()
        self._snapshots.pop(_check_key(key), None)

    async def close(self) -> None:
        """Refuse further use until :meth:`open`; the snapshots are kept. Idempotent."""
        self._state = _State.CLOSED


class SQLiteSnapshotStore:
    """Snapshots in an SQLite database file: they survive a crash, a kill or a restart.

    Built on the standard library's ``sqlite3``: no server to run. The file may be shared
    by several processes (WAL mode; a writer waits up to ``busy_timeout`` seconds for
    another's write to finish; the last completed write of a key wins) and may hold other
    tables of your own; the snapshots live in one table, ``microscheduler_snapshots``, one
    row per key. Every ``save`` is committed (and synced to disk) before it returns.

    Own it with ``async with SQLiteSnapshotStore(path) as store:`` and pass it to any
    number of executors (``WorkerConfig(snapshot_store=store)``), which never close it.
    Calls before :meth:`open` open the database first; calls after :meth:`close` raise
    ``RuntimeError`` until it is opened again.

    Args:
        path: The database file; created, with its table, if it does not exist. Its
            directory must exist and be writable (WAL mode keeps two files beside it).
        busy_timeout: Seconds to wait for another connection's write lock before failing.
        synchronous: ``"FULL"`` (the default): each save is synced to the device before it
            returns, so it survives a power loss or an OS crash too. ``"NORMAL"``: each
            save survives the process being killed, but the last ones may be rolled back
            by a power loss or an OS crash; it skips an fsync per save, which is most of
            a save's cost on many disks.

    Raises:
        TypeError: ``path`` is not a str or path, or ``busy_timeout`` is not a number.
        ValueError: ``busy_timeout`` is negative, or ``synchronous`` is neither
            ``"FULL"`` nor ``"NORMAL"``.
    """

    __module__ = "microscheduler"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float):
            raise TypeError(f"busy_timeout must be a number, got {type(busy_timeout).__name__}")
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout cannot be negative, got {busy_timeout}")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self._path = os.fspath(path)
        self._busy_timeout = float(busy_timeout)
        self._synchronous = synchronous
        self._connection: sqlite3.Connection | None = None
        self._state = _State.NEW
        self._lock = threading.Lock()
        # One limiter per event loop: an anyio limiter must not be waited on from two loops.
        self._limiters: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anyio.CapacityLimiter
        ] = weakref.WeakKeyDictionary()

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"<SQLiteSnapshotStore {self._state.value} path={self._path!r}>"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the database, creating or checking its table; a no-op when already open.

        Raises:
            ConfigError: The file is not an SQLite database, cannot be opened or written
                (a read-only file or directory, a missing directory), or holds a
                ``microscheduler_snapshots`` table of another shape.
        """
        await self._run(self._open_locked)

    async def load(self, key: str) -> bytes | None:
        """Return the snapshot stored under ``key``, or None if there is none."""
        _check_key(key)
        return await self._run(self._load_locked, key)

    async def save(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` in one committed transaction.

        When it returns the snapshot is on disk. If it raises (a full disk, a lock held
        longer than ``busy_timeout``, any database error), the transaction was rolled back
        and the previous snapshot of ``key`` is still there.
        """
        _check_key(key)
        await self._run(self._write_locked, _UPSERT, (key, _check_data(data), time.time()))

    async def delete(self, key: str) -> None:
        """Delete the snapshot of ``key`` in one committed transaction.

        The pages it held are then given back to the file system (in a file this store
        created; see ``auto_vacuum`` in the docs), so deleting a large snapshot shrinks
        the file.
        """
        _check_key(key)
        await self._run(self._delete_locked, key)

    async def close(self) -> None:
        """Close the database connection; idempotent. :meth:`open` reopens it."""
        await self._run(self._close_locked)

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(self._locked, func, *args, limiter=limiter)

    def _locked(self, func: Callable[..., T], *args: object) -> T:
        with self._lock:
            return func(*args)

    def _usable_connection(self) -> sqlite3.Connection:
        if self._state is _State.CLOSED:
            raise _closed_error(self)
        if self._connection is None:
            self._open_locked()
        assert self._connection is not None
        return self._connection

    def _open_locked(self) -> None:
        if self._connection is not None:
            return
        self._connection = connect(self._path, self._busy_timeout, self._synchronous)
        self._state = _State.OPEN
        logger.debug("snapshot_store_opened", path=self._path)

    def _load_locked(self, key: str) -> bytes | None:
        row = (
            self._usable_connection()
            .execute(f"SELECT data FROM {TABLE} WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def _write_locked(self, sql: str, params: tuple[object, ...]) -> None:
        connection = self._usable_connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(sql, params)
            connection.execute("COMMIT")
        except BaseException:
            # A failed statement may already have ended the transaction; if not, undo it.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _delete_locked(self, key: str) -> None:
        self._write_locked(f"DELETE FROM {TABLE} WHERE key = ?", (key,))
        reclaim_free_pages(self._usable_connection())

    def _close_locked(self) -> None:
        connection, self._connection = self._connection, None
        self._state = _State.CLOSED
        if connection is not None:
            connection.close()
            logger.debug("snapshot_store_closed", path=self._path)
