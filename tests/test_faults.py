"""Fault injection: computes and states that misbehave (issue 5; design rules 5 to 7)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio.to_thread
import pytest
import structlog
from _helpers import Counter, Gate, const, task

from microscheduler import (
    InterruptContext,
    Priority,
    StateRestoreError,
    TaskExecutor,
    WorkerConfig,
)
from microscheduler.pytest_plugin import ExecutorFactory

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


class LogTap:
    """A structlog logger that keeps every event and signals chosen ones."""

    def __init__(self, wanted: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.seen = asyncio.Event()
        self.wanted = wanted
        self.logger = structlog.wrap_logger(structlog.PrintLogger(), processors=[self.keep])

    def keep(self, logger: object, method: str, event_dict: dict[str, Any]) -> str:
        self.events.append({**event_dict, "level": method})
        if event_dict["event"] == self.wanted:
            self.seen.set()
        raise structlog.DropEvent


class TestExecuteFromInsideACompute:
    async def test_single_worker_refuses_instead_of_deadlocking(self, single: TaskExecutor) -> None:
        """execute() inside a compute of a single-processor executor raises a clear
        RuntimeError (the one worker would wait for itself); the worker goes on."""

        async def nested(resource: object, state: object, ctx: InterruptContext) -> Any:
            return await single.execute(task(const("inner"), UI, name="inner"))

        with pytest.raises(RuntimeError, match="execute\\('inner'\\) from inside task 'outer'"):
            await single.execute(task(nested, BG, name="outer"))
        assert await single.execute(task(const("still alive"))) == "still alive"

    async def test_another_worker_may_serve_it(self, multi: TaskExecutor) -> None:
        """A Background compute may execute UI work (UI worker) or more Background work
        when another background worker serves that lane."""

        async def nested(resource: object, state: object, ctx: InterruptContext) -> Any:
            ui = await multi.execute(task(const("ui"), UI))
            bg = await multi.execute(task(const("bg"), BG))
            return ui, bg

        assert await multi.execute(task(nested, BG)) == ("ui", "bg")

    async def test_submit_inside_a_compute_is_fine(self, single: TaskExecutor) -> None:
        """submit() (not awaiting the handle) from a compute queues the work normally."""
        handles: list[Any] = []

        async def spawner(resource: object, state: object, ctx: InterruptContext) -> str:
            handles.append(await single.submit(task(const("child"))))
            return "parent"

        assert await single.execute(task(spawner)) == "parent"
        assert await handles[0] == "child"


class TestUnresponsiveRuns:
    async def test_sync_compute_that_never_checks_is_waited_for_and_reported(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """A sync compute that ignores is_interrupted() delays the preempting UI work until
        its thread returns (design rule 5), and a task_interrupt_ignored warning names it."""
        tap = LogTap("task_interrupt_ignored")
        config = WorkerConfig(interrupt_warning=0.01)
        started = threading.Event()
        release = threading.Event()

        def stubborn(resource: object, state: object, ctx: InterruptContext) -> str:
            started.set()
            release.wait(30)
            return "ignored the interrupt"

        executor = await executor_factory(config, logger=tap.logger)
        handle = executor.submit_nowait(task(stubborn, BG, name="stubborn"))
        await anyio.to_thread.run_sync(started.wait)
        ui_started = asyncio.Event()

        async def urgent(resource: object, state: object, ctx: InterruptContext) -> str:
            ui_started.set()
            return "ui"

        ui = executor.submit_nowait(task(urgent, UI))
        await tap.seen.wait()
        assert not ui_started.is_set()
        release.set()
        assert await ui == "ui"
        assert await handle == "ignored the interrupt"  # its rerun, which was not preempted
        (warning, *_) = [e for e in tap.events if e["event"] == "task_interrupt_ignored"]
        assert warning["level"] == "warning"
        assert (warning["task"], warning["reason"], warning["sync"]) == (
            "stubborn",
            "preempted",
            True,
        )

    async def test_coroutine_that_swallows_cancellation_is_cancelled_again(
        self, single: TaskExecutor
    ) -> None:
        """A compute that swallows its cancellation is cancelled again at its next await;
        when it finally returns, the preempting work runs and the task is rerun."""
        swallowed = 0
        events: list[str] = []
        started = asyncio.Event()

        async def stubborn(resource: object, state: object, ctx: InterruptContext) -> str:
            nonlocal swallowed
            if ctx.attempt > 1:
                return "rerun"
            started.set()
            for _ in range(3):
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    swallowed += 1
            events.append("stubborn returned")
            return "discarded"

        async def urgent(resource: object, state: object, ctx: InterruptContext) -> None:
            events.append("urgent ran")

        handle = single.submit_nowait(task(stubborn))
        await started.wait()
        await single.execute(task(urgent, UI))
        assert await handle == "rerun"
        assert swallowed == 3
        assert events == ["stubborn returned", "urgent ran"]


class TestStateFaults:
    async def test_restore_failing_on_a_rerun(self, single: TaskExecutor) -> None:
        """A restore() that raises before a rerun gives the caller StateRestoreError."""

        class FailsSecondTime(Counter):
            def restore(self, data: bytes) -> None:
                raise ValueError("snapshot from an older version")

        gate = Gate()

        async def background(resource: object, state: Counter, ctx: InterruptContext) -> Any:
            state.value = 1
            await ctx.save_state(state)
            return await gate(resource, state, ctx)

        handle = single.submit_nowait(task(background, initial_state=FailsSecondTime()))
        await gate.started.wait()
        await single.execute(task(const(None), UI))
        with pytest.raises(StateRestoreError, match="older version") as info:
            await handle
        assert isinstance(info.value.__cause__, ValueError)
        assert gate.attempts == [1]

    async def test_save_failing_inside_a_cancelled_run(self, single: TaskExecutor) -> None:
        """A save() that raises while the run is being preempted loses only that snapshot:
        the task is rerun from its previous checkpoint."""

        class Flaky(Counter):
            broken = False

            def save(self) -> bytes:
                if self.broken:
                    raise OSError("disk full")
                return super().save()

        state = Flaky()
        started = asyncio.Event()
        starts: list[int] = []

        async def background(resource: object, s: Flaky, ctx: InterruptContext) -> int:
            starts.append(s.value)
            if ctx.attempt > 1:
                return s.value
            s.value = 2
            await ctx.save_state(s)
            s.value = 5
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                s.broken = True
                await ctx.save_state(s)  # raises StateSaveError: this snapshot is lost
            return -1

        handle = single.submit_nowait(task(background, initial_state=state))
        await started.wait()
        await single.execute(task(const(None), UI))
        assert await handle == 2
        assert starts == [0, 2]
