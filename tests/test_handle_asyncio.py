"""Task handles with asyncio's own waiting functions: wait, as_completed, gather."""

from __future__ import annotations

import asyncio
import contextvars
import weakref

import pytest
from _helpers import Counter, Gate, const, settle, task

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

    async def test_an_unfinished_handle_refuses_result_as_asyncio_does(
        self, single: TaskExecutor
    ) -> None:
        """result() and exception() before an outcome raise an error that is both a
        RuntimeError and an asyncio.InvalidStateError, with the message naming the task."""
        gate = Gate()
        running = single.submit_nowait(task(gate, name="slow"))
        await gate.started.wait()
        for method in (running.result, running.exception):
            with pytest.raises(asyncio.InvalidStateError, match="task 'slow' is not done yet"):
                method()
            with pytest.raises(RuntimeError, match="not done yet; await the handle instead"):
                method()
        gate.release.set()
        await running

    async def test_a_handle_repr_shows_its_key(self, single: TaskExecutor) -> None:
        """A keyed handle's repr names its key, as does the handle that joined it."""
        gate = Gate()
        first = single.submit_nowait(task(gate, name="index", key="doc-7"))
        joined = single.submit_nowait(task(gate, name="index", key="doc-7"))
        unkeyed = single.submit_nowait(task(const(1), name="plain"))
        assert "key='doc-7'" in repr(first)
        assert "key='doc-7'" in repr(joined)
        assert "key=" not in repr(unkeyed)
        gate.release.set()
        await asyncio.gather(first, joined, unkeyed)


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


class TestHandleIsAFuture:
    async def test_a_handle_is_an_asyncio_future(self, single: TaskExecutor) -> None:
        """A handle is an asyncio.Future: what takes a future takes it as it is."""
        handle = single.submit_nowait(task(const(7)))
        assert isinstance(handle, asyncio.Future)
        assert asyncio.ensure_future(handle) is handle
        assert await asyncio.wait_for(handle, timeout=None) == 7

    async def test_only_the_executor_settles_a_handle(self, single: TaskExecutor) -> None:
        """set_result and set_exception are refused, as on an asyncio.Task; the handle
        still gets its own outcome."""
        gate = Gate("own")
        handle = single.submit_nowait(task(gate))
        with pytest.raises(RuntimeError, match="set_result"):
            handle.set_result("forged")
        with pytest.raises(RuntimeError, match="set_exception"):
            handle.set_exception(ValueError("forged"))
        gate.release.set()
        assert await handle == "own"

    async def test_wait_for_timeout_withdraws_the_queued_task(self, single: TaskExecutor) -> None:
        """asyncio.wait_for(handle, t) cancels the handle when t passes: a queued task is
        withdrawn, never run, and counted cancelled."""
        gate = Gate()
        blocker = single.submit_nowait(task(gate, UI))
        await gate.started.wait()
        ran: list[str] = []

        async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            ran.append("ran")

        queued = single.submit_nowait(task(compute))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queued, timeout=0)
        assert queued.cancelled()
        gate.release.set()
        await blocker
        stats = single.statistics()
        assert (stats.cancelled, stats.completed, ran) == (1, 1, [])


class TestFinishedHandles:
    async def test_a_finished_handle_keeps_no_state_or_context(self, single: TaskExecutor) -> None:
        """A handle kept for its result does not keep the execution's state object or its
        caller's context variables alive."""

        class Marker:
            pass

        class State(Counter):
            __slots__ = ("__weakref__",)

        var: contextvars.ContextVar[Marker] = contextvars.ContextVar("var")
        watched: list[weakref.ref[object]] = []

        async def compute(resource: object, state: State, ctx: InterruptContext) -> int:
            watched.append(weakref.ref(state))
            watched.append(weakref.ref(var.get()))
            return 1

        token = var.set(Marker())
        handle = single.submit_nowait(task(compute, initial_state=State))
        var.reset(token)
        assert await handle == 1
        assert len(watched) == 2
        assert [ref() for ref in watched] == [None, None]
        assert handle.result() == 1
