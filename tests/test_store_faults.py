"""Snapshot stores under stress: a load cut off by a preemption, a store that never
answers, one store shared by two executors, keys a store cannot encode."""

from __future__ import annotations

import asyncio
from typing import Any

from _helpers import Counter, const, task

from microscheduler import (
    InterruptContext,
    MemorySnapshotStore,
    Priority,
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
