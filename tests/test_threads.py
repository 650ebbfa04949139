"""Sync computes in worker threads."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import anyio.from_thread
import anyio.to_thread
import pytest
from _helpers import Counter, const, task

from microscheduler import InterruptContext, Priority, TaskExecutor

UI, BG = Priority.UI, Priority.BACKGROUND


class ThreadGate:
    """A sync compute that signals it started and polls is_interrupted() until told to stop."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.ended = threading.Event()
        self.reasons: list[str | None] = []
        self.attempts: list[int] = []

    def __call__(self, resource: object, state: Counter, ctx: InterruptContext) -> str:
        self.attempts.append(ctx.attempt)
        self.started.set()
        try:
            while not self.release.is_set():
                if ctx.is_interrupted():
                    self.reasons.append(ctx.reason)
                    ctx.save_state_nowait(state)
                    return "interrupted"
                time.sleep(0.001)  # polling interval of a CPU-bound loop, not an ordering
            return "finished"
        finally:
            self.ended.set()

    async def wait_started(self) -> None:
        await anyio.to_thread.run_sync(self.started.wait)
        self.started.clear()


HOUR = 3600.0


class SteppedClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock a test can move forward: deadlines then pass at once."""

    def __init__(self) -> None:
        super().__init__()
        self._offset = 0.0

    def time(self) -> float:
        return super().time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the loop's clock ``seconds`` forward."""
        self._offset += seconds


class TestSyncCompute:
    async def test_runs_in_a_worker_thread(self, single: TaskExecutor) -> None:
        """A plain def compute runs off the event loop thread and its value is returned."""

        def compute(resource: object, state: object, ctx: InterruptContext) -> int:
            return threading.get_ident()

        ident = await single.execute(task(compute))
        assert ident != threading.get_ident()

    async def test_exception_from_a_thread(self, single: TaskExecutor) -> None:
        """A sync compute's exception reaches the caller unchanged."""
        error = ValueError("bad row")

        def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            raise error

        with pytest.raises(ValueError) as info:
            await single.execute(task(compute))
        assert info.value is error

    async def test_preempted_thread_finishes_before_urgent_work(self, single: TaskExecutor) -> None:
        """A preempted sync compute sees is_interrupted(), its thread returns before the UI
        compute starts, and its rerun resumes from the snapshot it saved."""
        gate = ThreadGate()
        state = Counter(5)
        handle = single.submit_nowait(task(gate, BG, initial_state=state))
        await gate.wait_started()
        observed: list[bool] = []

        async def urgent(resource: object, s: object, ctx: InterruptContext) -> str:
            observed.append(gate.ended.is_set())
            return "ui"

        assert await single.execute(task(urgent, UI)) == "ui"
        assert observed == [True]
        assert gate.reasons == ["preempted"]
        await gate.wait_started()
        gate.release.set()
        assert await handle == "finished"
        assert gate.attempts == [1, 2]
        assert state.restored == [5]

    async def test_save_state_called_from_a_thread_saves(self, single: TaskExecutor) -> None:
        """save_state(state) called (not awaited) from a sync compute's thread saves at
        once, like save_state_nowait: the rerun after a preemption resumes from it."""
        started = threading.Event()

        def compute(resource: object, state: Counter, ctx: InterruptContext) -> list[int]:
            if ctx.attempt == 1:
                state.value = 7
                ctx.save_state(state)  # no await: this is a thread
                started.set()
                while not ctx.is_interrupted():
                    time.sleep(0.001)  # polling interval of a CPU-bound loop, not an ordering
            return state.restored

        handle = single.submit_nowait(task(compute, BG, initial_state=Counter))
        await anyio.to_thread.run_sync(started.wait)
        assert await single.execute(task(const("ui"), UI)) == "ui"
        assert await handle == [7]

    async def test_caller_cancel_interrupts_the_thread(self, single: TaskExecutor) -> None:
        """Cancelling the caller of a sync compute flips is_interrupted() ("cancelled")."""
        gate = ThreadGate()
        caller = asyncio.create_task(single.execute(task(gate)))
        await gate.wait_started()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert await single.execute(task(const("next"))) == "next"
        assert gate.reasons == ["cancelled"]

    def test_task_timeout_interrupts_the_thread(self) -> None:
        """Task.timeout flips is_interrupted() in a sync compute with reason "timeout".

        Ordered by a gate, not by a short timeout: the timeout is an hour of the loop's
        clock, the compute's thread reports it started, and only then is the loop's clock
        moved past the deadline. (With a real 10 ms timeout the deadline could pass before
        the thread started, and the compute is then skipped by design.)
        """
        gate = ThreadGate()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            assert isinstance(loop, SteppedClockLoop)
            async with TaskExecutor(1) as executor:
                handle = executor.submit_nowait(task(gate, timeout=HOUR))
                await gate.wait_started()
                loop.advance(HOUR)
                with pytest.raises(TimeoutError):
                    await handle

        with asyncio.Runner(loop_factory=SteppedClockLoop) as runner:
            runner.run(main())
        assert gate.reasons == ["timeout"]

    async def test_shutdown_waits_for_the_thread(self) -> None:
        """When shutdown() returns, a running sync compute's thread has returned."""
        gate = ThreadGate()
        executor = TaskExecutor(1)
        await executor.start()
        executor.submit_nowait(task(gate))
        await gate.wait_started()
        await executor.shutdown()
        assert gate.ended.is_set()
        assert gate.reasons == ["shutdown"]

    async def test_save_state_from_a_thread_through_anyio(self, single: TaskExecutor) -> None:
        """A sync compute can await save_state through anyio.from_thread.run."""
        state = Counter(3)

        def compute(resource: object, s: Counter, ctx: InterruptContext) -> Any:
            s.value = 9
            anyio.from_thread.run(ctx.save_state, s)
            return ctx.is_interrupted()

        handle = single.submit_nowait(task(compute, initial_state=state))
        assert await handle is False
        assert handle.snapshot == b"9"

    async def test_lambda_returning_a_coroutine(self, single: TaskExecutor) -> None:
        """A plain callable that returns an awaitable has it awaited on the loop."""

        async def real(resource: object, state: object, ctx: InterruptContext) -> str:
            return "awaited"

        assert await single.execute(task(lambda r, s, c: real(r, s, c))) == "awaited"


class TestThreadGuards:
    def test_interrupted_run_never_starts_its_sync_compute(self) -> None:
        """If a run is interrupted before its worker thread gets to it (its caller gave up
        meanwhile), the thread returns without calling the compute."""
        from microscheduler._context import NOT_RUN, call_sync

        calls: list[str] = []

        class Handle:
            name = "late"

        ctx = InterruptContext(Handle(), 1)  # type: ignore[arg-type]
        ctx._signal("cancelled")
        compute = lambda r, s, c: calls.append("ran")  # noqa: E731
        assert call_sync(compute, None, None, ctx) is NOT_RUN
        assert calls == []

    async def test_sync_computes_running_counts_threads(self, single: TaskExecutor) -> None:
        """microscheduler.testing.sync_computes_running() counts computes in threads."""
        from microscheduler.testing import sync_computes_running

        gate = ThreadGate()
        before = sync_computes_running()
        handle = single.submit_nowait(task(gate))
        await gate.wait_started()
        assert sync_computes_running() == before + 1
        gate.release.set()
        assert await handle == "finished"
        assert sync_computes_running() == before
