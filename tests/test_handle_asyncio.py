"""Task handles with asyncio's own waiting functions: wait, as_completed, gather."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import Gate, const, settle, task

from microscheduler import InterruptContext, Priority, TaskExecutor, TaskHandle

UI, BG = Priority.UI, Priority.BACKGROUND


async def broken(resource: object, state: object, ctx: InterruptContext) -> None:
    raise ValueError("boom")


class TestFutureMethods:
    async def test_done_callback_gets_the_handle(self, single: TaskExecutor) -> None:
        """add_done_callback calls fn(handle) once the outcome is set."""
        seen: list[TaskHandle[object]] = []
        handle = single.submit_nowait(task(const(1)))
        handle.add_done_callback(seen.append)
        await handle
        await settle()
        assert seen == [handle]

    async def test_remove_done_callback(self, single: TaskExecutor) -> None:
        """remove_done_callback removes every registration of fn and says how many."""
        seen: list[TaskHandle[object]] = []
        kept: list[TaskHandle[object]] = []
        handle = single.submit_nowait(task(const(1)))
        handle.add_done_callback(seen.append)
        handle.add_done_callback(seen.append)
        handle.add_done_callback(kept.append)
        assert handle.remove_done_callback(seen.append) == 2
        assert handle.remove_done_callback(seen.append) == 0
        await handle
        await settle()
        assert (seen, kept) == ([], [handle])

    async def test_cancelled_and_exception(self, single: TaskExecutor) -> None:
        """cancelled() and exception() report each outcome as asyncio.Future's do."""
        gate = Gate()
        running = single.submit_nowait(task(gate))
        await gate.started.wait()
        with pytest.raises(RuntimeError, match="not done yet"):
            running.exception()
        assert not running.cancelled()
        failed = single.submit_nowait(task(broken))
        cancelled = single.submit_nowait(task(const(2)))
        cancelled.cancel()
        gate.release.set()
        await asyncio.wait([running, failed])
        assert running.exception() is None and not running.cancelled()
        error = failed.exception()
        assert isinstance(error, ValueError) and str(error) == "boom"
        assert cancelled.cancelled()
        with pytest.raises(asyncio.CancelledError):
            cancelled.exception()


class TestAsyncioFunctions:
    async def test_wait_first_completed(self, single: TaskExecutor) -> None:
        """asyncio.wait(handles) returns the handles themselves, split into done and pending."""
        gate = Gate()
        slow = single.submit_nowait(task(gate))
        await gate.started.wait()
        quick = single.submit_nowait(task(const("quick"), UI))
        done, pending = await asyncio.wait([slow, quick], return_when=asyncio.FIRST_COMPLETED)
        assert (done, pending) == ({quick}, {slow})
        gate.release.set()
        done, pending = await asyncio.wait([slow, quick])
        assert (done, pending) == ({slow, quick}, set())
        assert slow.result() == "done"

    async def test_wait_first_exception(self, single: TaskExecutor) -> None:
        """asyncio.wait(..., FIRST_EXCEPTION) returns as soon as one handle fails."""
        gate = Gate()
        slow = single.submit_nowait(task(gate))
        await gate.started.wait()
        failing = single.submit_nowait(task(broken, UI))
        done, pending = await asyncio.wait([slow, failing], return_when=asyncio.FIRST_EXCEPTION)
        assert (done, pending) == ({failing}, {slow})
        gate.release.set()
        await slow
        with pytest.raises(ValueError, match="boom"):
            failing.result()

    async def test_as_completed(self, single: TaskExecutor) -> None:
        """asyncio.as_completed(handles) yields the results in the order they finish."""
        gate = Gate("background")
        slow = single.submit_nowait(task(gate))
        await gate.started.wait()
        quick = single.submit_nowait(task(const("ui"), UI))
        results = []
        for next_done in asyncio.as_completed([slow, quick]):
            results.append(await next_done)
            gate.release.set()
        assert results == ["ui", "background"]

    async def test_gather(self, single: TaskExecutor) -> None:
        """asyncio.gather(*handles) gives the results in order, or the failures with
        return_exceptions=True."""
        handles = [single.submit_nowait(task(const(i))) for i in range(3)]
        assert await asyncio.gather(*handles) == [0, 1, 2]
        failing = single.submit_nowait(task(broken))
        ok = single.submit_nowait(task(const("ok")))
        first, second = await asyncio.gather(failing, ok, return_exceptions=True)
        assert isinstance(first, ValueError) and second == "ok"
