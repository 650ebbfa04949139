"""Preemption with dedicated background workers: none by default, every Background run
with preempt_background."""

from __future__ import annotations

import asyncio
from typing import Any

from _helpers import Gate, const, task, wait_until

from microscheduler import (
    InterruptContext,
    Priority,
    TaskExecutor,
    TaskStatus,
)

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


class TestMultiWorker:
    async def test_no_preemption_by_default(self, multi: TaskExecutor) -> None:
        """With dedicated background workers and no preempt_background, nothing is
        preempted: UI work runs beside Background work."""
        gate = Gate()
        contexts: list[InterruptContext] = []

        async def background(resource: object, state: object, ctx: InterruptContext) -> Any:
            contexts.append(ctx)
            return await gate(resource, state, ctx)

        handle = multi.submit_nowait(task(background, BG))
        await gate.started.wait()
        assert await multi.execute(task(const("ui"), UI)) == "ui"
        assert not contexts[0].is_interrupted()
        gate.release.set()
        assert await handle == "done"
        assert multi.statistics().preempted == 0

    async def test_preempt_background(self, multi_preempt: TaskExecutor) -> None:
        """With preempt_background, urgent work preempts every Background run, and no
        Background work starts until the urgent lanes are idle."""
        gates = [Gate(), Gate()]
        handles = [
            multi_preempt.submit_nowait(task(g, BG, name=f"bg{i}")) for i, g in enumerate(gates)
        ]
        for gate in gates:
            await gate.started.wait()
            gate.started.clear()
        ui = Gate()
        ui_handle = multi_preempt.submit_nowait(task(ui, UI))
        await ui.started.wait()
        fresh = multi_preempt.submit_nowait(task(const("fresh"), BG))

        def held_back() -> bool:
            stats = multi_preempt.statistics()
            return stats.idle_workers == 2 and stats.queued[BG] == 3

        # Both background workers wait while three Background executions are queued.
        await wait_until(held_back, what="idle background workers beside queued work")
        assert [g.attempts for g in gates] == [[1], [1]]
        assert not fresh.done()
        assert all(h.status is TaskStatus.PREEMPTED for h in handles)
        for gate in gates:
            gate.release.set()
        ui.release.set()
        assert await asyncio.gather(ui_handle, fresh, *handles) == [
            "done", "fresh", "done", "done",
        ]  # fmt: skip
        assert [g.attempts for g in gates] == [[1, 2], [1, 2]]
        assert multi_preempt.statistics().preempted == 2
