"""Minimal reproductions of core bugs found by the stress tests and the soak run.

Each test was marked ``xfail(strict=True)`` while its bug was open; the markers went with
the fixes, so these now guard against the bugs coming back.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from _helpers import Gate, task, wait_until

from microscheduler import InterruptContext, Priority, TaskExecutor, TaskHandle, TaskStatus


async def _await(handle: TaskHandle[Any]) -> Any:
    return await handle


async def test_caller_cancelled_as_run_returns_counts_as_cancelled(single: TaskExecutor) -> None:
    """A caller cancelled in the loop iteration its run returns in gets CancelledError and
    its handle says CANCELLED, so the statistics count the execution as cancelled too."""
    gate = Gate()
    handle = await single.submit(task(gate))
    waiter = asyncio.create_task(_await(handle))
    await gate.started.wait()
    gate.release.set()  # the run returns in the next iteration, before the waiter wakes
    waiter.cancel()  # cancels the handle's future at once; the waiter wakes after the run
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await wait_until(lambda: single.statistics().idle_workers == 1, what="the worker at rest")
    stats = single.statistics()
    assert handle.status is TaskStatus.CANCELLED
    assert (stats.completed, stats.cancelled) == (0, 1)


def test_handle_cancel_while_the_loop_is_not_running() -> None:
    """handle.cancel() called while the loop is paused between run_until_complete calls
    (as asyncio.Task.cancel() may be) cancels the run once the loop runs again."""
    loop = asyncio.new_event_loop()
    executor = TaskExecutor(1)
    gate = Gate()

    async def start() -> TaskHandle[Any]:
        await executor.start()
        handle = executor.submit_nowait(task(gate))
        await gate.started.wait()
        return handle

    try:
        handle = loop.run_until_complete(start())
        assert handle.cancel() is True  # raises RuntimeError("no running event loop")
        loop.run_until_complete(
            wait_until(lambda: executor.statistics().idle_workers == 1, what="the run to end")
        )
        assert gate.reasons == ["cancelled"]
        assert executor.statistics().running == 0
    finally:
        gate.release.set()  # today the run was never cancelled: let it end by itself
        loop.run_until_complete(executor.shutdown())
        loop.close()


class ManualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when a test moves it, so timers are ordered."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now


def test_handle_cancelled_after_task_timeout_counts_as_cancelled() -> None:
    """A handle cancelled while its timed-out run is still winding down (a sync compute
    whose thread has not returned yet) ends CANCELLED, and is counted as cancelled."""
    loop = ManualClockLoop()
    executor = TaskExecutor(1)
    started = asyncio.Event()
    release = threading.Event()
    contexts: list[InterruptContext] = []

    def compute(resource: object, state: object, ctx: InterruptContext) -> str:
        contexts.append(ctx)
        loop.call_soon_threadsafe(started.set)
        release.wait()
        return "late"

    async def scenario() -> None:
        await executor.start()
        handle = executor.submit_nowait(task(compute, timeout=10.0))
        try:
            await started.wait()
            loop.now += 11.0  # Task.timeout expires while the thread still runs
            await contexts[0].wait()
            assert contexts[0].reason == "timeout"
            assert handle.cancel() is True
        finally:
            release.set()
        with pytest.raises(asyncio.CancelledError):
            await handle
        await executor.shutdown(drain=True)
        stats = executor.statistics()
        assert handle.status is TaskStatus.CANCELLED
        assert (stats.timed_out, stats.cancelled) == (0, 1)

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def test_call_timeout_expiring_during_shutdown_counts_as_timed_out() -> None:
    """A call whose execute(timeout=) expires while a shutdown is winding its run down gets
    TimeoutError, so its execution is counted in timed_out, not cancelled."""
    loop = ManualClockLoop()
    executor = TaskExecutor(1)
    started = asyncio.Event()
    release = threading.Event()
    contexts: list[InterruptContext] = []

    def compute(resource: object, state: object, ctx: InterruptContext) -> str:
        contexts.append(ctx)
        loop.call_soon_threadsafe(started.set)
        release.wait()
        return "late"

    async def scenario() -> None:
        await executor.start()
        handle = executor.submit_nowait(task(compute), timeout=10.0)
        try:
            await started.wait()
            stopping = asyncio.ensure_future(executor.shutdown())
            await contexts[0].wait()
            assert contexts[0].reason == "shutdown"
            loop.now += 11.0  # the call's deadline passes while its run winds down
            await wait_until(handle.done, what="the call to end at its deadline")
        finally:
            release.set()
            await executor.shutdown()
        await stopping
        with pytest.raises(TimeoutError):
            await handle
        stats = executor.statistics()
        assert handle.status is TaskStatus.FAILED
        assert (stats.timed_out, stats.cancelled) == (1, 0)

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def test_task_timeout_after_a_preemption_does_not_kill_the_worker() -> None:
    """A Background run under Task.timeout is preempted (its cancel scope is cancelled),
    then its deadline passes while the compute still runs. The timeout used to add a
    native cancellation of its own, which could fold into the scope's in the same step and
    hide it: the worker task then ended cancelled and every later call hung. Only the
    scope's cancellations may reach the compute; the run ends as a timeout, and the
    worker goes on serving."""
    loop = ManualClockLoop()
    executor = TaskExecutor(1)
    started = asyncio.Event()
    seen: list[object] = []

    async def stubborn(resource: object, state: object, ctx: InterruptContext) -> str:
        started.set()
        for _ in range(20):  # swallows every cancellation, noting what it carried
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError as exc:
                seen.append(exc.args[0] if exc.args else None)
        return "stubborn"

    async def urgent(resource: object, state: object, ctx: InterruptContext) -> str:
        return "urgent"

    async def scenario() -> None:
        await executor.start()
        try:
            background = executor.submit_nowait(task(stubborn, timeout=10.0))
            await started.wait()
            loop.now += 11.0  # the run's deadline is due from the next loop turn
            await asyncio.sleep(0)
            ui = executor.submit_nowait(task(urgent, Priority.UI))  # preempts it then
            assert await ui == "urgent"
            with pytest.raises(TimeoutError):
                await background
            assert seen, "the preemption never reached the compute"
            assert all(
                isinstance(m, str) and m.startswith("Cancelled via cancel scope") for m in seen
            )
            after = executor.submit_nowait(task(urgent, Priority.UI))
            await wait_until(after.done, what="the worker to serve the next call")
            assert after.result() == "urgent"
        finally:
            await executor.shutdown(timeout=1.0)
        stats = executor.statistics()
        assert (stats.preempted, stats.timed_out, stats.completed) == (1, 1, 2)

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
