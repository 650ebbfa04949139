"""Snapshot stores under stress: a load cut off by a preemption, a store that never
answers, one store shared by two executors, keys a store cannot encode."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from _helpers import Counter, const, task

from microscheduler import (
    ConfigError,
    InterruptContext,
    MemorySnapshotStore,
    Priority,
    SQLiteSnapshotStore,
    StateRestoreError,
    StateSaveError,
    TaskExecutor,
    WorkerConfig,
)

UI, BG = Priority.UI, Priority.BACKGROUND


class GatedLoadStore(MemorySnapshotStore):
    """A memory store whose first ``load`` waits for a gate that is never opened."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.first_load_started = asyncio.Event()

    async def load(self, key: str) -> bytes | None:
        self.loads += 1
        if self.loads == 1:
            self.first_load_started.set()
            await asyncio.Event().wait()
        return await super().load(key)


async def test_a_load_cut_off_by_a_preemption_is_redone() -> None:
    """A keyed Background task preempted while its first store load is under way loads
    again on its rerun and resumes from the stored checkpoint."""
    store = GatedLoadStore()
    await store.save("k", Counter(7).save())
    seen: list[int] = []

    async def compute(resource: object, state: Counter, ctx: InterruptContext) -> int:
        seen.append(state.value)
        return state.value

    async with TaskExecutor(WorkerConfig(snapshot_store=store)) as executor:
        handle = await executor.submit(task(compute, BG, key="k", initial_state=Counter))
        await store.first_load_started.wait()
        assert await executor.execute(task(const("urgent"), UI)) == "urgent"
        assert await handle == 7
    assert seen == [7]
    assert store.loads == 2


async def test_a_store_shared_by_two_executors_outlives_either(tmp_path: Path) -> None:
    """Two executors share one SQLiteSnapshotStore; one shuts down while the other's keyed
    run is between two saves, and the other's saves go on (the store is its owner's)."""
    saved_once, go_on = asyncio.Event(), asyncio.Event()

    async def compute(resource: object, state: Counter, ctx: InterruptContext) -> int:
        for _ in range(3):
            state.value += 1
            await ctx.save_state(state)
            saved_once.set()
            await go_on.wait()
        return state.value

    async with SQLiteSnapshotStore(tmp_path / "shared.db") as store:
        config = WorkerConfig(snapshot_store=store)
        async with TaskExecutor(config) as first, TaskExecutor(config) as second:
            handle = await second.submit(task(compute, BG, key="second", initial_state=Counter))
            await saved_once.wait()
            assert await first.execute(task(const("first"), BG, key="first")) == "first"
            await first.shutdown()
            go_on.set()
            assert await handle == 3
        assert "open" in repr(store)
        assert await store.load("second") is None  # completed: its snapshot was deleted
        await store.save("after", b"1")  # still the owner's to use


async def test_the_default_store_is_closed_with_its_executor() -> None:
    """The MemorySnapshotStore an executor makes for itself is closed at its shutdown."""
    executor = TaskExecutor(1)
    async with executor:
        pass
    assert "closed" in repr(executor._store)


class StuckStore(MemorySnapshotStore):
    """A store whose ``load`` and ``save`` never return (they await an Event never set)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = asyncio.Event()

    async def load(self, key: str) -> bytes | None:
        self.calls.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def save(self, key: str, data: bytes) -> None:
        self.calls.set()
        await asyncio.Event().wait()


class TestStoreTimeout:
    def test_is_validated_naming_the_field(self) -> None:
        """A store_timeout that is not a positive number is refused, naming the field."""
        with pytest.raises(ConfigError, match="store_timeout must be > 0"):
            WorkerConfig(store_timeout=0)
        with pytest.raises(TypeError, match="store_timeout must be a number"):
            WorkerConfig(store_timeout="30")  # type: ignore[arg-type]

    async def test_a_load_that_never_returns_fails_the_run(self) -> None:
        """A store load that outlives store_timeout fails the run with StateRestoreError
        naming the timeout; the worker goes on."""
        config = WorkerConfig(snapshot_store=StuckStore(), store_timeout=0.05)
        async with TaskExecutor(config) as executor:
            with pytest.raises(
                StateRestoreError,
                match=r"load\('k'\) did not return within "
                r"store_timeout=0.05s",
            ):
                await executor.execute(task(const(1), UI, key="k", initial_state=Counter))
            assert await executor.execute(task(const(2), UI)) == 2

    async def test_a_save_that_never_returns_fails_the_run(self) -> None:
        """A save_state whose store write outlives store_timeout raises StateSaveError
        naming the timeout in the compute, and the run fails with it."""

        async def compute(resource: object, state: Counter, ctx: InterruptContext) -> None:
            await ctx.save_state(state)

        config = WorkerConfig(snapshot_store=StuckStore(), store_timeout=0.05)
        async with TaskExecutor(config) as executor:
            keyed = task(compute, UI, key="k", initial_state=Counter, saved_state=b"0")
            with pytest.raises(
                StateSaveError,
                match=r"save\('k'\) did not return within "
                r"store_timeout=0.05s",
            ):
                await executor.execute(keyed)

    async def test_shutdown_returns_while_a_store_is_stuck(self) -> None:
        """shutdown() returns, with every handle done, while a custom store's save and
        load never return."""
        store = StuckStore()

        async def compute(resource: object, state: Counter, ctx: InterruptContext) -> None:
            await ctx.save_state(state)

        config = WorkerConfig(
            ui_workers=1, background_workers=1, snapshot_store=store, store_timeout=0.2
        )
        executor = TaskExecutor(config)
        await executor.start()
        saving = await executor.submit(
            task(compute, UI, key="s", initial_state=Counter, saved_state=b"0")
        )
        loading = await executor.submit(task(const(1), BG, key="l", initial_state=Counter))
        await store.calls.wait()
        await executor.shutdown()
        assert saving.done()
        assert loading.done()
        for handle in (saving, loading):
            handle.exception()  # retrieved: each has its one outcome

    async def test_a_stuck_sqlite_thread_is_bounded(self, tmp_path: Path) -> None:
        """A SQLite save stuck behind another connection's write lock (busy_timeout far
        longer than store_timeout) fails the run within store_timeout."""

        async def compute(resource: object, state: Counter, ctx: InterruptContext) -> None:
            await ctx.save_state(state)

        path = tmp_path / "locked.db"
        async with SQLiteSnapshotStore(path, busy_timeout=60.0) as store:
            config = WorkerConfig(snapshot_store=store, store_timeout=0.1)
            async with TaskExecutor(config) as executor:
                other = sqlite3.connect(path, isolation_level=None)
                other.execute("BEGIN IMMEDIATE")
                try:
                    keyed = task(compute, UI, key="k", initial_state=Counter, saved_state=b"0")
                    with pytest.raises(StateSaveError, match="store_timeout=0.1s"):
                        await executor.execute(keyed)
                finally:
                    other.execute("ROLLBACK")
                    other.close()


def test_a_key_that_utf8_cannot_encode_is_refused_at_task() -> None:
    """A key holding a lone surrogate (as os.fsdecode makes of an undecodable file name)
    is refused by Task() with ValueError naming the key, not at every store call."""
    with pytest.raises(ValueError, match=r"Task key 'doc-\\udcff' cannot be encoded as UTF-8"):
        task(const(1), key="doc-\udcff")
