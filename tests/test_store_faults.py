"""Snapshot stores under stress: a load cut off by a preemption, a store that never
answers, one store shared by two executors, keys a store cannot encode."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from _helpers import Counter, const, task

from microscheduler import (
    InterruptContext,
    MemorySnapshotStore,
    Priority,
    SQLiteSnapshotStore,
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
