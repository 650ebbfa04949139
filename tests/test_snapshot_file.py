"""SQLiteSnapshotStore's file: it gives deleted snapshots' space back, and saves of keyed
tasks wait for the store (the two things a user of a real SQLite file can observe)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path

from microscheduler import (
    InterruptContext,
    SQLiteSnapshotStore,
    Task,
    TaskExecutor,
    WorkerConfig,
)

MiB = 1024 * 1024


def auto_vacuum_of(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return int(connection.execute("PRAGMA auto_vacuum").fetchone()[0])


def on_disk(path: Path) -> tuple[int, bool]:
    """The file's size, and whether its write-ahead log is still beside it."""
    return path.stat().st_size, Path(f"{path}-wal").exists()


async def test_deleting_a_large_snapshot_gives_its_space_back_to_the_file_system(
    tmp_path: Path,
) -> None:
    """A new store's file shrinks back to a few pages once a 20 MiB snapshot is deleted."""
    path = tmp_path / "snapshots.db"
    async with SQLiteSnapshotStore(path) as store:
        await store.save("small", b"kept")
        await store.save("large", os.urandom(20 * MiB))
        await store.delete("large")
        assert await store.load("small") == b"kept"
    size, wal_left = on_disk(path)  # closed: the WAL was checkpointed into the file
    assert not wal_left
    assert size < MiB
    assert auto_vacuum_of(path) == 2  # INCREMENTAL


async def test_a_file_made_without_auto_vacuum_is_used_as_it_is(tmp_path: Path) -> None:
    """A file laid out by an earlier version (auto_vacuum off) is not rewritten, and works."""
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE app_data (x INTEGER)")  # the application's own
    async with SQLiteSnapshotStore(path) as store:
        await store.save("large", os.urandom(2 * MiB))
        await store.delete("large")
        await store.save("next", os.urandom(2 * MiB))  # reuses the freed pages
        assert await store.load("large") is None
    assert auto_vacuum_of(path) == 0
    assert on_disk(path)[0] < 5 * MiB


class Progress:
    """A state whose snapshot is its count."""

    def __init__(self) -> None:
        self.done = 0

    def save(self) -> bytes:
        return str(self.done).encode()

    def restore(self, data: bytes) -> None:
        self.done = int(data)


async def loop_ran_during_save(
    resource: object, state: Progress, interrupt: InterruptContext
) -> bool:
    """Whether the event loop ran other callbacks while ``await save_state`` was under way."""
    ran = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(ran.set_result, None)
    await interrupt.save_state(state)
    return ran.done()


async def test_a_keyed_save_state_suspends_until_the_store_wrote_it(tmp_path: Path) -> None:
    """Awaiting save_state suspends for a keyed task (the SQLite write), never without a key."""
    store = SQLiteSnapshotStore(tmp_path / "s.db")
    async with store, TaskExecutor.from_config(WorkerConfig(snapshot_store=store)) as executor:
        keyed = Task(name="keyed", key="k", compute=loop_ran_during_save, initial_state=Progress)
        unkeyed = Task(name="unkeyed", compute=loop_ran_during_save, initial_state=Progress)
        assert await executor.execute(keyed) is True
        assert await executor.execute(unkeyed) is False
