"""The core's answers to seven faults found by probing it, and the design card's shape:
lanes that are priority queues, a supervisor task, timeouts through asyncio.timeout."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest
from _helpers import Gate, const, task, wait_until

from microscheduler import (
    InterruptContext,
    Priority,
    Task,
    TaskExecutor,
    WorkerConfig,
)
from microscheduler._lanes import Lane
from microscheduler.pytest_plugin import ExecutorFactory

UI, BG = Priority.UI, Priority.BACKGROUND
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class Escape(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


class TestBaseExceptions:
    @pytest.mark.parametrize("error", [Escape("out"), GeneratorExit()])
    async def test_reaches_the_caller_and_the_worker_survives(
        self, single: TaskExecutor, error: BaseException
    ) -> None:
        """A compute raising a BaseException (not KeyboardInterrupt/SystemExit) gives the
        caller that very exception, and the same worker runs the next task."""

        async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            raise error

        with pytest.raises(type(error)) as caught:
            await single.execute(task(compute, UI))
        assert caught.value is error
        assert await single.execute(task(const("next"), UI)) == "next"
        assert single.statistics().failed == 1

    async def test_sync_compute_too(self, single: TaskExecutor) -> None:
        """The same holds for a sync compute raising it in its worker thread."""

        def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            raise Escape("thread")

        with pytest.raises(Escape, match="thread"):
            await single.execute(task(compute, UI))
        assert await single.execute(task(const(2), UI)) == 2


class TestStrayCancellations:
    async def test_a_fresh_cancellation_from_a_preempted_compute(
        self, single: TaskExecutor, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A preempted compute that swallows its scope's cancellation and later raises a
        CancelledError of its own (as some libraries do) does not end the worker: the run
        is rerun, the worker serves the next call, and the stray cancellation is logged."""
        started = asyncio.Event()

        async def rude(resource: object, state: object, ctx: InterruptContext) -> str:
            if ctx.attempt > 1:
                return "rerun"
            started.set()
            swallowed = False
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                swallowed = True
            if swallowed:
                raise asyncio.CancelledError  # a new one: no link to the scope's
            return "never"

        background = single.submit_nowait(task(rude))
        await started.wait()
        assert await single.execute(task(const("urgent"), UI)) == "urgent"
        assert await background == "rerun"
        assert await single.execute(task(const("next"), UI)) == "next"
        strays = [r for r in caplog.records if "worker_stray_cancellation" in r.getMessage()]
        assert len(strays) == 1


class TestContextVariables:
    @pytest.mark.parametrize("sync", [False, True])
    async def test_compute_sees_its_callers_context(self, single: TaskExecutor, sync: bool) -> None:
        """A compute, async or sync, sees the context variables its caller had at submit."""

        async def async_compute(resource: object, state: object, ctx: InterruptContext) -> str:
            return request_id.get()

        def sync_compute(resource: object, state: object, ctx: InterruptContext) -> str:
            return request_id.get()

        request_id.set("req-7")
        seen = await single.execute(task(sync_compute if sync else async_compute, UI))
        assert seen == "req-7"

    async def test_rerun_sees_the_callers_context(self, single: TaskExecutor) -> None:
        """A preempted task's rerun runs in the same copied context as its first run."""
        gate = Gate()
        seen: list[str] = []

        async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            seen.append(request_id.get())
            await gate(resource, state, ctx)

        async def submit_as(rid: str) -> Any:
            request_id.set(rid)
            return single.submit_nowait(task(compute, BG))

        handle = await asyncio.create_task(submit_as("bg-1"))
        await gate.started.wait()
        gate.started.clear()
        await single.execute(task(const(None), UI))
        await gate.started.wait()
        gate.release.set()
        await handle
        assert seen == ["bg-1", "bg-1"]

    async def test_a_variable_set_by_one_compute_does_not_leak(self, single: TaskExecutor) -> None:
        """What one compute sets stays in its own context: the next compute on the same
        worker, and the caller, do not see it."""

        async def setter(resource: object, state: object, ctx: InterruptContext) -> None:
            request_id.set("leaked")

        async def getter(resource: object, state: object, ctx: InterruptContext) -> str:
            return request_id.get()

        request_id.set("caller")
        await single.execute(task(setter, UI))
        assert await single.execute(task(getter, UI)) == "caller"
        assert request_id.get() == "caller"


async def test_drain_from_inside_a_compute_is_refused(single: TaskExecutor) -> None:
    """shutdown(drain=True) awaited from a compute of the same executor raises at once
    instead of waiting for itself; the executor keeps running."""

    async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
        await single.shutdown(drain=True)

    with pytest.raises(RuntimeError, match=r"drain=True\) from inside a compute"):
        await single.execute(task(compute, UI))
    assert await single.execute(task(const(1), UI)) == 1


async def test_call_from_another_loop_is_refused_before_anything_is_queued(
    single: TaskExecutor,
) -> None:
    """execute() from another event loop (here: another thread's) is refused with a clear
    error, and nothing is queued or counted."""
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            asyncio.run(single.execute(task(const(1), UI)))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "another event loop" in str(errors[0])
    assert single.statistics().submitted == 0


async def test_timeout_bounds_the_wait_for_room(small_background_lane: TaskExecutor) -> None:
    """execute(timeout=) on a full lane gives TimeoutError after the timeout even though
    it never got room; the waiter is gone and nothing was admitted for it."""
    executor = small_background_lane
    gate = Gate()
    running = executor.submit_nowait(task(gate))
    await gate.started.wait()
    queued = executor.submit_nowait(task(const(1)))
    with pytest.raises(TimeoutError):
        await executor.execute(task(const(2)), timeout=0.01)
    stats = executor.statistics()
    assert (stats.submitted, stats.waiting_submitters) == (2, 0)
    gate.release.set()
    await asyncio.gather(running, queued)


async def test_callers_that_give_up_leave_no_waiter_behind(
    small_background_lane: TaskExecutor,
) -> None:
    """Submitters cancelled while waiting for room are removed from the lane at once."""
    executor = small_background_lane
    gate = Gate()
    running = executor.submit_nowait(task(gate))
    await gate.started.wait()
    queued = executor.submit_nowait(task(const(1)))
    waiters = [asyncio.create_task(executor.submit(task(const(i)))) for i in range(50)]
    await wait_until(lambda: executor.statistics().waiting_submitters == 50, what="50 waiters")
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    lane = executor._lanes[BG]
    assert len(lane._putters) == 0
    gate.release.set()
    await asyncio.gather(running, queued)


class TestCrossClassWaits:
    async def test_background_awaiting_urgent_work_is_refused(
        self, multi_preempt: TaskExecutor
    ) -> None:
        """With preempt_background, a Background compute awaiting UI work would be
        preempted by it forever: execute() refuses it."""

        async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            await multi_preempt.execute(task(const(1), UI))

        with pytest.raises(RuntimeError, match="preempts the very run that waits for it"):
            await multi_preempt.execute(task(compute, BG))
        assert multi_preempt.statistics().preempted == 0

    async def test_urgent_awaiting_background_work_is_refused(
        self, multi_preempt: TaskExecutor
    ) -> None:
        """With preempt_background, a UI compute awaiting Background work would deadlock
        (background workers start nothing while urgent work runs): execute() refuses it."""

        async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
            await multi_preempt.execute(task(const(1), BG))

        with pytest.raises(RuntimeError, match="would deadlock"):
            await multi_preempt.execute(task(compute, UI))


class TestDesignCard:
    async def test_lanes_are_priority_queues(self, single: TaskExecutor) -> None:
        """Each lane is an asyncio.PriorityQueue whose maxsize is the lane's capacity."""
        lanes = single._lanes
        assert all(isinstance(lane, asyncio.PriorityQueue) for lane in lanes)
        assert [lane.maxsize for lane in lanes] == [100, 100, 100]

    async def test_supervisor_task_lives_between_start_and_shutdown(self) -> None:
        """start() creates a task named microscheduler-supervisor; shutdown() ends it."""

        def supervisors() -> list[asyncio.Task[Any]]:
            return [t for t in asyncio.all_tasks() if "supervisor" in t.get_name()]

        executor = TaskExecutor(1)
        assert supervisors() == []
        async with executor:
            assert [t.get_name() for t in supervisors()] == ["microscheduler-supervisor"]
        assert supervisors() == []

    async def test_grace_expiry_runs_on_the_supervisor_task(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """A preempted run's grace ends from the supervisor task: the victim's scope is
        cancelled while the supervisor runs, not from a plain loop callback."""
        executor = await executor_factory(WorkerConfig(interrupt_grace=0.01))
        cancelled: list[str] = []

        async def victim(resource: object, state: object, ctx: InterruptContext) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError as exc:
                cancelled.append(f"{ctx.reason}: {exc}")  # anyio names who cancelled
                raise

        handle = executor.submit_nowait(task(victim, BG))
        await wait_until(lambda: executor.statistics().running == 1, what="the run started")
        await executor.execute(task(const(1), UI))
        assert len(cancelled) == 1
        assert cancelled[0].startswith("preempted: ")
        assert "microscheduler-supervisor" in cancelled[0]
        handle.cancel()

    async def test_task_timeout_uses_a_fresh_asyncio_timeout(self, single: TaskExecutor) -> None:
        """Task.timeout is enforced by asyncio.timeout: the run sees an asyncio.Timeout
        context manager's cancellation with reason "timeout" first."""
        seen: list[object] = []

        async def slow(resource: object, state: object, ctx: InterruptContext) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                seen.append(ctx.reason)
                raise

        with pytest.raises(TimeoutError, match=r"Task\.timeout"):
            await single.execute(task(slow, UI, timeout=0.01))
        assert seen == ["timeout"]
        assert single.statistics().timed_out == 1


def test_priority_queue_lane_keeps_lane_order_without_a_loop() -> None:
    """A lane can be built outside a running loop (an executor is constructed anywhere)."""
    lane = Lane(BG, 2)
    assert lane.empty() and not lane.full() and lane.qsize() == 0


async def _pickled_compute(resource: object, state: object, ctx: object) -> int:
    return 1


def test_task_pickles_and_stays_immutable() -> None:
    """A Task survives pickling (as Ray and multiprocessing do) with every field, and the
    copy is as immutable as the original."""
    import dataclasses
    import pickle

    original = Task(name="x", compute=_pickled_compute, key="k", timeout=2.0, priority=0)  # type: ignore[arg-type]
    copy = pickle.loads(pickle.dumps(original))
    for field in dataclasses.fields(Task):
        assert getattr(copy, field.name) == getattr(original, field.name), field.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.name = "y"  # type: ignore[misc]


def test_subscripted_task_constructs() -> None:
    """Task[int](...) works on Python 3.11 (typing's __orig_class__ assignment is ignored)."""
    t = Task[int](name="typed", compute=_pickled_compute)
    assert t.name == "typed" and t.is_async


def test_shutdown_from_another_loop_is_refused_with_a_clear_error() -> None:
    """shutdown() from a second asyncio.run() after the one that started the executor has
    closed raises a RuntimeError that says so, not a raw 'Event loop is closed'."""
    executor = TaskExecutor(1)

    async def start_and_use() -> int:
        await executor.start()
        return await executor.execute(task(const(3), UI))

    assert asyncio.run(start_and_use()) == 3
    with pytest.raises(RuntimeError, match=r"call shutdown\(\) from the loop that started it"):
        asyncio.run(executor.shutdown())
    with pytest.raises(RuntimeError, match=r"another event loop \(now closed\)"):
        asyncio.run(executor.shutdown(drain=True))
