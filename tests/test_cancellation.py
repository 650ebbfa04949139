"""Caller cancellation and timeouts (design rules 5 and 6 in docs/design.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from _helpers import Gate, const, task, wait_until

from microscheduler import InterruptContext, Priority, TaskExecutor, TaskStatus

UI, BG = Priority.UI, Priority.BACKGROUND


async def hold_worker(executor: TaskExecutor) -> Gate:
    """Occupy the single worker with a UI task; returns its gate."""
    gate = Gate()
    executor.submit_nowait(task(gate, UI, name="holder"))
    await gate.started.wait()
    return gate


class TestCallerCancel:
    async def test_cancelled_while_queued_never_runs(self, single: TaskExecutor) -> None:
        """A caller cancelled while its task is queued: the task is withdrawn, never runs."""
        holder = await hold_worker(single)
        ran = False

        async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            nonlocal ran
            ran = True

        caller = asyncio.create_task(single.execute(task(compute)))
        await wait_until(lambda: single.statistics().queued[BG] == 1, what="the call queued")
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert single.statistics().queued[BG] == 0
        holder.release.set()
        assert await single.execute(task(const("after"))) == "after"
        assert not ran
        assert single.statistics().cancelled == 1

    async def test_cancelled_while_running(self, single: TaskExecutor) -> None:
        """A caller cancelled while its task runs: the run is cancelled (reason
        "cancelled"), never rescheduled, and the cancellation propagates."""
        gate = Gate()
        caller = asyncio.create_task(single.execute(task(gate)))
        await gate.started.wait()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert await single.execute(task(const("next"))) == "next"
        assert gate.reasons == ["cancelled"]
        assert gate.attempts == [1]
        stats = single.statistics()
        assert (stats.cancelled, stats.rescheduled, stats.running) == (1, 0, 0)

    async def test_asyncio_timeout_around_execute(self, single: TaskExecutor) -> None:
        """asyncio.timeout around execute raises TimeoutError; the run sees "cancelled"."""
        gate = Gate()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await single.execute(task(gate))
        await single.execute(task(const(None)))
        assert gate.reasons == ["cancelled"]

    async def test_anyio_scope_around_execute(self, single: TaskExecutor) -> None:
        """An anyio cancel scope around execute cancels the run and is not swallowed."""
        gate = Gate()
        with anyio.CancelScope() as scope:
            caller = asyncio.current_task()
            assert caller is not None
            asyncio.get_running_loop().call_soon(lambda: None)

            async def cancel_when_started() -> None:
                await gate.started.wait()
                scope.cancel()

            helper = asyncio.create_task(cancel_when_started())
            await single.execute(task(gate))
        await helper
        assert scope.cancelled_caught
        await single.execute(task(const(None)))
        assert gate.reasons == ["cancelled"]

    async def test_cancelled_while_waiting_for_rerun(self, single: TaskExecutor) -> None:
        """A caller that gives up while its preempted task waits for its rerun withdraws it."""
        bg = Gate()
        handle = single.submit_nowait(task(bg))
        await bg.started.wait()
        holder = await hold_worker(single)
        assert handle.status is TaskStatus.PREEMPTED
        assert handle.cancel()
        holder.release.set()
        await single.execute(task(const(None)))
        assert bg.attempts == [1]
        assert single.statistics().queued[BG] == 0

    async def test_cancelled_caller_of_a_cancelled_task_is_not_rerun(
        self, single: TaskExecutor
    ) -> None:
        """A task whose caller is gone is never started later, even if it was taken off
        its lane in the same loop step."""
        holder = await hold_worker(single)
        ran = False

        async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            nonlocal ran
            ran = True

        caller = asyncio.create_task(single.execute(task(compute, UI)))
        await wait_until(lambda: single.statistics().queued[UI] == 1, what="the call queued")
        holder.release.set()  # the worker may pop the task before the caller's cancel lands
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await single.execute(task(const(None)))
        assert not ran


class TestHandleCancel:
    async def test_cancel_queued_handle(self, single: TaskExecutor) -> None:
        """handle.cancel() on a queued task withdraws it; awaiting it raises CancelledError."""
        holder = await hold_worker(single)
        handle = single.submit_nowait(task(const(1)))
        assert handle.cancel()
        assert handle.status is TaskStatus.CANCELLED
        assert handle.done()
        with pytest.raises(asyncio.CancelledError):
            await handle
        with pytest.raises(asyncio.CancelledError):
            handle.result()
        assert not handle.cancel()
        holder.release.set()

    async def test_cancel_running_handle(self, single: TaskExecutor) -> None:
        """handle.cancel() on a running task interrupts its run with reason "cancelled"."""
        gate = Gate()
        handle = single.submit_nowait(task(gate))
        await gate.started.wait()
        handle.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handle
        await single.execute(task(const(None)))
        assert gate.reasons == ["cancelled"]

    async def test_cancelling_a_coroutine_awaiting_the_handle(self, single: TaskExecutor) -> None:
        """As with an asyncio.Task, cancelling a coroutine that awaits a handle cancels the
        execution: a running one is interrupted with reason "cancelled"."""
        gate = Gate()
        handle = single.submit_nowait(task(gate))
        await gate.started.wait()
        awaiting = asyncio.Event()

        async def await_handle() -> Any:
            awaiting.set()  # the waiter awaits the handle in this same step
            return await asyncio.wait_for(handle, timeout=None)

        waiter = asyncio.create_task(await_handle())
        await awaiting.wait()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await single.execute(task(const(None)))
        assert gate.reasons == ["cancelled"]
        assert handle.status is TaskStatus.CANCELLED

    async def test_cancel_after_completion_is_a_no_op(self, single: TaskExecutor) -> None:
        """cancel() on a finished handle returns False and keeps the result."""
        handle = single.submit_nowait(task(const(5)))
        assert await handle == 5
        assert not handle.cancel()
        assert handle.result() == 5


class TestExecuteTimeout:
    async def test_timeout_while_queued(self, single: TaskExecutor) -> None:
        """execute(timeout=...) expiring while queued withdraws the task: TimeoutError."""
        holder = await hold_worker(single)
        ran = False

        async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            nonlocal ran
            ran = True

        with pytest.raises(TimeoutError, match="did not finish within 0.01s"):
            await single.execute(task(compute), timeout=0.01)
        holder.release.set()
        await single.execute(task(const(None)))
        assert not ran
        assert single.statistics().timed_out == 1

    async def test_timeout_while_running(self, single: TaskExecutor) -> None:
        """execute(timeout=...) expiring while running cancels the run (reason "timeout")."""
        gate = Gate()
        with pytest.raises(TimeoutError):
            await single.execute(task(gate), timeout=0.01)
        await single.execute(task(const(None)))
        assert gate.reasons == ["timeout"]
        assert gate.attempts == [1]

    async def test_bad_timeout(self, single: TaskExecutor) -> None:
        """A negative or non-numeric timeout is refused before anything is queued."""
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            await single.execute(task(const(1)), timeout=-1)
        with pytest.raises(TypeError, match="timeout must be a number"):
            single.submit_nowait(task(const(1)), timeout="soon")  # type: ignore[arg-type]


class TestTaskTimeout:
    async def test_run_exceeding_task_timeout(self, single: TaskExecutor) -> None:
        """A run longer than Task.timeout is cancelled (reason "timeout"), not rerun, and
        the caller gets TimeoutError."""
        gate = Gate()
        with pytest.raises(TimeoutError, match=r"Task.timeout"):
            await single.execute(task(gate, timeout=0.01))
        assert gate.reasons == ["timeout"]
        assert gate.attempts == [1]
        stats = single.statistics()
        assert (stats.timed_out, stats.failed) == (1, 0)

    async def test_queue_time_does_not_count(self, single: TaskExecutor) -> None:
        """Time spent queued is not part of Task.timeout: only the run is limited."""
        holder = await hold_worker(single)
        handle = single.submit_nowait(task(const("ok"), timeout=0.05))
        # Keep the task queued for longer than its timeout (a duration, not an ordering).
        await asyncio.sleep(0.1)
        holder.release.set()
        assert await handle == "ok"

    async def test_each_run_gets_the_full_timeout(self, single: TaskExecutor) -> None:
        """Time spent preempted does not count: a rerun gets Task.timeout afresh."""
        started = asyncio.Event()

        async def background(resource: object, state: object, ctx: InterruptContext) -> Any:
            if ctx.attempt == 1:
                started.set()
                await asyncio.Event().wait()
            return ctx.attempt

        handle = single.submit_nowait(task(background, timeout=0.05))
        await started.wait()
        ui = Gate()
        single.submit_nowait(task(ui, UI))
        await ui.started.wait()
        await asyncio.sleep(0.1)  # preempted for longer than the timeout (a duration)
        ui.release.set()
        assert await handle == 2
