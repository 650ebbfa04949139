"""Snapshot stores: MemorySnapshotStore and SQLiteSnapshotStore on real files.

Faults are real: a file that is not a database, a read-only mount or directory, a trigger
that makes SQLite refuse a write, two processes writing one file, a process killed with
SIGKILL between writes (in test_crash_resume.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import FrameType

import anyio
import pytest

from microscheduler import (
    ConfigError,
    MemorySnapshotStore,
    SnapshotStore,
    SQLiteSnapshotStore,
)

CHILD = Path(__file__).with_name("_snapshot_child.py")
MiB = 1024 * 1024


def child(*args: str) -> list[str]:
    """Run the store child process to completion and return its output lines."""
    done = subprocess.run(
        [sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def thread_running(function: str) -> bool:
    """Whether some thread is now inside a Python function of that name."""
    frame: FrameType | None
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name == function:
                return True
            frame = frame.f_back
    return False


async def wait_for_thread_in(function: str) -> None:
    """Return once a worker thread has entered ``function`` (polls that observable state)."""
    while not thread_running(function):  # noqa: ASYNC110 - a thread's state has no event
        await asyncio.sleep(0.001)


@contextlib.contextmanager
def held_write_lock(path: Path) -> Iterator[None]:
    """Hold the database's write lock from another connection, as another process would."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MemorySnapshotStore | SQLiteSnapshotStore]:
    """Each store kind, opened, and closed at teardown."""
    the_store: MemorySnapshotStore | SQLiteSnapshotStore
    if request.param == "memory":
        the_store = MemorySnapshotStore()
    else:
        the_store = SQLiteSnapshotStore(tmp_path / "snapshots.db")
    await the_store.open()
    yield the_store
    await the_store.close()


class TestBothStores:
    async def test_satisfy_the_protocol(self, store: SnapshotStore) -> None:
        """Both stores are SnapshotStores (runtime-checkable protocol)."""
        assert isinstance(store, SnapshotStore)

    async def test_save_load_replace_delete(self, store: SnapshotStore) -> None:
        """load gives the last saved bytes of a key, None for an unknown or deleted key."""
        assert await store.load("doc-1") is None
        await store.save("doc-1", b"first")
        await store.save("doc-2", b"other")
        await store.save("doc-1", bytearray(b"second"))
        assert await store.load("doc-1") == b"second"
        assert await store.load("doc-2") == b"other"
        await store.delete("doc-1")
        await store.delete("doc-1")  # deleting a missing key is not an error
        assert await store.load("doc-1") is None
        assert await store.load("doc-2") == b"other"

    async def test_ten_mib_round_trips(self, store: SnapshotStore) -> None:
        """A 10 MiB snapshot comes back byte for byte."""
        big = os.urandom(10 * MiB)
        await store.save("big", big)
        assert await store.load("big") == big

    async def test_empty_snapshot_is_not_no_snapshot(self, store: SnapshotStore) -> None:
        """An empty snapshot (a NoOpTaskState's) loads as b"", not as None."""
        await store.save("empty", b"")
        assert await store.load("empty") == b""

    async def test_wrong_types_are_refused(self, store: SnapshotStore) -> None:
        """A key that is not a str or data that is not bytes is a TypeError naming it."""
        with pytest.raises(TypeError, match="snapshot key must be a str, got int"):
            await store.save(42, b"x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="snapshot data must be bytes, got str"):
            await store.save("k", "text")  # type: ignore[arg-type]
        assert await store.load("k") is None

    async def test_close_is_idempotent_and_use_after_close_is_clear(
        self, store: MemorySnapshotStore | SQLiteSnapshotStore
    ) -> None:
        """close() twice is fine; load/save/delete after it raise RuntimeError saying the
        store is closed; open() makes it usable again with the snapshots kept."""
        await store.save("k", b"kept")
        await store.close()
        await store.close()
        assert "closed" in repr(store)
        for call in (store.load("k"), store.save("k", b"x"), store.delete("k")):
            with pytest.raises(RuntimeError, match=r"SnapshotStore is closed; reopen it"):
                await call
        await store.open()
        assert await store.load("k") == b"kept"

    async def test_concurrent_saves_from_many_tasks(self, store: SnapshotStore) -> None:
        """Ten tasks each writing their own key ten times at once lose no write."""

        async def writer(n: int) -> None:
            for seq in range(1, 11):
                await store.save(f"key-{n}", f"{n}:{seq}".encode())

        await asyncio.gather(*(writer(n) for n in range(10)))
        for n in range(10):
            assert await store.load(f"key-{n}") == f"{n}:10".encode()


class TestSQLiteStore:
    def test_bad_arguments_are_refused(self, tmp_path: Path) -> None:
        """A path that is not a path, a negative busy_timeout or an unknown synchronous
        mode is refused at construction, naming the argument."""
        with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
            SQLiteSnapshotStore(3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="busy_timeout cannot be negative, got -1"):
            SQLiteSnapshotStore(tmp_path / "s.db", busy_timeout=-1)
        with pytest.raises(ValueError, match="synchronous must be 'FULL' or 'NORMAL', got 'OFF'"):
            SQLiteSnapshotStore(tmp_path / "s.db", synchronous="OFF")  # type: ignore[arg-type]

    async def test_normal_synchronous_mode_round_trips(self, tmp_path: Path) -> None:
        """A store with synchronous="NORMAL" saves and reloads like the default one."""
        path = tmp_path / "s.db"
        async with SQLiteSnapshotStore(path, synchronous="NORMAL") as store:
            await store.save("doc", b"fast")
        async with SQLiteSnapshotStore(path) as store:
            assert await store.load("doc") == b"fast"

    async def test_snapshots_outlive_the_store_object(self, tmp_path: Path) -> None:
        """A new store on the same file reads what a closed one saved."""
        path = tmp_path / "s.db"
        async with SQLiteSnapshotStore(path) as first:
            await first.save("doc", b"progress 7")
        async with SQLiteSnapshotStore(str(path)) as second:
            assert await second.load("doc") == b"progress 7"

    async def test_wal_mode_and_one_row_per_key(self, tmp_path: Path) -> None:
        """The file is in WAL mode and holds one row per key, however often it is saved."""
        path = tmp_path / "s.db"
        async with SQLiteSnapshotStore(path) as store:
            for seq in range(5):
                await store.save("a", bytes([seq]))
            await store.save("b", b"b")
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            rows = db.execute("SELECT key, data FROM microscheduler_snapshots ORDER BY key")
            assert rows.fetchall() == [("a", b"\x04"), ("b", b"b")]
        db.close()

    async def test_calls_before_open_open_the_database(self, tmp_path: Path) -> None:
        """A store used without open() (as the protocol allows) opens itself first."""
        store = SQLiteSnapshotStore(tmp_path / "s.db")
        assert "new" in repr(store)
        await store.save("k", b"v")
        assert "open" in repr(store)
        assert await store.load("k") == b"v"
        await store.close()

    async def test_a_file_that_is_not_sqlite_is_a_config_error(self, tmp_path: Path) -> None:
        """open() on a file that is not an SQLite database raises ConfigError with the
        sqlite3 error as its cause, and leaves the file as it was."""
        path = tmp_path / "notes.txt"
        path.write_bytes(b"these are my notes, not a database\n" * 100)
        store = SQLiteSnapshotStore(path)
        with pytest.raises(ConfigError, match="is not an SQLite database") as caught:
            await store.open()
        assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
        assert path.read_bytes() == b"these are my notes, not a database\n" * 100
        await store.close()

    async def test_a_missing_directory_is_a_config_error(self, tmp_path: Path) -> None:
        """open() on a path whose directory does not exist raises a ConfigError naming it."""
        store = SQLiteSnapshotStore(tmp_path / "no" / "such" / "dir" / "s.db")
        with pytest.raises(ConfigError, match="cannot be opened for writing.*directory exists"):
            await store.open()

    async def test_a_foreign_table_of_that_name_is_a_config_error(self, tmp_path: Path) -> None:
        """A database whose microscheduler_snapshots table has other columns is refused."""
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE microscheduler_snapshots (id INTEGER, blob BLOB)")
        db.close()
        with pytest.raises(ConfigError, match="expected \\('key', 'data', 'saved_at'\\)"):
            await SQLiteSnapshotStore(path).open()

    def test_read_only_paths_are_config_errors(self, tmp_path: Path) -> None:
        """On a read-only mount (as root; a read-only directory otherwise), both a new
        file and an existing snapshot database are refused at open() with a ConfigError."""
        base = tmp_path / "ro"
        base.mkdir()
        existing = base / "existing.db"
        with sqlite3.connect(existing) as db:
            db.execute("PRAGMA journal_mode=WAL")
        db.close()
        paths = [str(base / "new.db"), str(existing)]
        if os.geteuid() == 0:
            # Root writes through file modes; a read-only bind mount in a private mount
            # namespace (gone when the child exits) is read-only even for root.
            unshare = shutil.which("unshare")
            assert unshare is not None, "util-linux's unshare is needed to test as root"
            script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && "$@"'
            command = [unshare, "--mount", "sh", "-c", script, "sh", str(base)]
        else:
            existing.chmod(0o444)
            base.chmod(0o555)
            command = []
        try:
            done = subprocess.run(
                [*command, sys.executable, str(CHILD), "open", *paths[:1]],
                capture_output=True,
                text=True,
                timeout=60,
            )
            again = subprocess.run(
                [*command, sys.executable, str(CHILD), "open", *paths[1:]],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            base.chmod(0o755)
        for result in (done, again):
            assert result.returncode == 0, result.stderr
            assert result.stdout.startswith("ConfigError: snapshot store"), result.stdout
            assert "cannot be opened for writing" in result.stdout
        assert not (base / "new.db").exists()

    async def test_a_failed_write_keeps_the_previous_snapshot(self, tmp_path: Path) -> None:
        """When SQLite refuses a write (here a trigger that raises), save raises the
        sqlite3 error, the previous snapshot is intact and the store stays usable."""
        path = tmp_path / "s.db"
        async with SQLiteSnapshotStore(path) as store:
            await store.save("doc", b"checkpoint 1")
            admin = sqlite3.connect(path, isolation_level=None)
            for event in ("INSERT", "UPDATE"):
                admin.execute(
                    f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} "
                    "ON microscheduler_snapshots WHEN NEW.key = 'doc' "
                    "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
                )
            with pytest.raises(sqlite3.IntegrityError, match="disk says no"):
                await store.save("doc", b"checkpoint 2")
            assert await store.load("doc") == b"checkpoint 1"
            await store.save("other", b"fine")  # no transaction was left open
            admin.execute("DROP TRIGGER refuse_insert")
            admin.execute("DROP TRIGGER refuse_update")
            admin.close()
            await store.save("doc", b"checkpoint 3")
            assert await store.load("doc") == b"checkpoint 3"

    async def test_a_write_lock_held_too_long_fails_cleanly(self, tmp_path: Path) -> None:
        """A save that cannot get the write lock within busy_timeout raises
        OperationalError; the previous snapshot is intact."""
        path = tmp_path / "s.db"
        async with SQLiteSnapshotStore(path, busy_timeout=0.05) as store:
            await store.save("doc", b"before")
            with (
                held_write_lock(path),
                pytest.raises(sqlite3.OperationalError, match="database is locked"),
            ):
                await store.save("doc", b"during")
            assert await store.load("doc") == b"before"

    async def test_a_save_cancelled_by_a_scope_completes_first(self, tmp_path: Path) -> None:
        """A save under way in its worker thread, cancelled through an anyio cancel scope
        (as the executor cancels runs), is not abandoned: the caller waits until the
        write has committed."""
        path = tmp_path / "s.db"
        async with SQLiteSnapshotStore(path, busy_timeout=30.0) as store:
            await store.save("doc", b"old")
            scope = anyio.CancelScope()

            async def save() -> None:
                with scope:
                    await store.save("doc", b"new")

            with held_write_lock(path):
                saving = asyncio.create_task(save())
                await wait_for_thread_in("_write_locked")
                scope.cancel()
                for _ in range(3):
                    await asyncio.sleep(0)
                assert not saving.done()
            await saving
            assert scope.cancelled_caught is False  # the save returned before it could be
            assert await store.load("doc") == b"new"

    async def test_a_save_cancelled_by_asyncio_never_tears(self, tmp_path: Path) -> None:
        """A save whose task is cancelled with Task.cancel() raises CancelledError at once;
        its write goes on in its thread and commits whole before the next call runs."""
        path = tmp_path / "s.db"
        async with SQLiteSnapshotStore(path, busy_timeout=30.0) as store:
            await store.save("doc", b"old")
            with held_write_lock(path):
                saving = asyncio.create_task(store.save("doc", b"new"))
                await wait_for_thread_in("_write_locked")
                saving.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await saving
            assert await store.load("doc") == b"new"

    async def test_one_store_shared_by_two_event_loops(self, tmp_path: Path) -> None:
        """Two threads, each with its own event loop, writing through one store at once
        lose nothing and leave a sound database."""
        store = SQLiteSnapshotStore(tmp_path / "s.db")
        errors: list[BaseException] = []

        async def write(prefix: str) -> None:
            await asyncio.gather(
                *(store.save(f"{prefix}-{n}", f"{prefix}{n}".encode()) for n in range(20))
            )

        def thread_main(prefix: str) -> None:
            try:
                asyncio.run(write(prefix))
            except BaseException as exc:  # reported by the test below
                errors.append(exc)

        threads = [threading.Thread(target=thread_main, args=(p,)) for p in ("a", "b")]
        for thread in threads:
            thread.start()
        await write("main")
        for thread in threads:
            await asyncio.to_thread(thread.join)
        assert errors == []
        for prefix in ("a", "b", "main"):
            for n in range(20):
                assert await store.load(f"{prefix}-{n}") == f"{prefix}{n}".encode()
        await store.close()
        with sqlite3.connect(tmp_path / "s.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
