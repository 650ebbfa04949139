"""Scheduling order and lanes (design rules 1, 2 and 7 in docs/design.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _helpers import Gate, const, task, wait_until

from microscheduler import (
    InterruptContext,
    NoOpTaskState,
    Priority,
    QueueFullError,
    TaskExecutor,
    WorkerConfig,
    WorkerType,
)
from microscheduler._execution import Execution
from microscheduler._lanes import Lane
from microscheduler.pytest_plugin import ExecutorFactory

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


def recorder(order: list[str], name: str) -> Any:
    async def compute(resource: object, state: object, ctx: InterruptContext) -> str:
        order.append(name)
        return name

    return compute


class TestStrictOrder:
    async def test_single_processor_takes_ui_then_last_effort_then_background(
        self, single: TaskExecutor
    ) -> None:
        """With all three lanes waiting, the one worker takes UI, LastEffort, Background,
        FIFO within each lane, whatever order they were queued in."""
        gate = Gate()
        blocker = single.submit_nowait(task(gate, UI, name="blocker"))
        await gate.started.wait()
        order: list[str] = []
        queued = [
            ("bg1", BG), ("le1", LE), ("ui1", UI), ("bg2", BG), ("le2", LE), ("ui2", UI),
        ]  # fmt: skip
        handles = [single.submit_nowait(task(recorder(order, n), p)) for n, p in queued]
        gate.release.set()
        await asyncio.gather(blocker, *handles)
        assert order == ["ui1", "ui2", "le1", "le2", "bg1", "bg2"]

    async def test_ui_worker_takes_ui_before_last_effort(self, multi: TaskExecutor) -> None:
        """In multi-worker mode the UI worker also serves UI before LastEffort."""
        gate = Gate()
        blocker = multi.submit_nowait(task(gate, UI))
        await gate.started.wait()
        order: list[str] = []
        handles = [
            multi.submit_nowait(task(recorder(order, "le"), LE)),
            multi.submit_nowait(task(recorder(order, "ui"), UI)),
        ]
        gate.release.set()
        await asyncio.gather(blocker, *handles)
        assert order == ["ui", "le"]


class TestLanesAndWorkers:
    async def test_ui_never_waits_for_a_background_worker(self, multi: TaskExecutor) -> None:
        """Busy background workers do not delay UI or LastEffort work."""
        gates = [Gate(), Gate()]
        held = [multi.submit_nowait(task(g, BG)) for g in gates]
        for gate in gates:
            await gate.started.wait()
        assert await multi.execute(task(const("ui"), UI)) == "ui"
        assert await multi.execute(task(const("le"), LE)) == "le"
        for gate in gates:
            gate.release.set()
        assert await asyncio.gather(*held) == ["done", "done"]

    async def test_workers_serve_their_lanes(self, executor_factory: ExecutorFactory) -> None:
        """UI work runs on UI workers (ids 0..), Background work on background workers."""
        executor = await executor_factory(WorkerConfig(ui_workers=2, background_workers=2))

        async def who(resource: Any, state: object, ctx: InterruptContext) -> Any:
            return resource

        ui = await executor.execute(task(who, UI))
        le = await executor.execute(task(who, LE))
        bg = await executor.execute(task(who, BG))
        assert ui.worker_type is WorkerType.UI and ui.worker_id in (0, 1)
        assert le.worker_type is WorkerType.UI
        assert bg.worker_type is WorkerType.BACKGROUND and bg.worker_id in (2, 3)

    async def test_background_workers_run_in_parallel(self, multi: TaskExecutor) -> None:
        """Two background workers run two Background tasks at the same time."""
        first, second = Gate(), Gate()
        handles = [multi.submit_nowait(task(first, BG)), multi.submit_nowait(task(second, BG))]
        await first.started.wait()
        await second.started.wait()
        first.release.set()
        second.release.set()
        assert await asyncio.gather(*handles) == ["done", "done"]

    async def test_single_processor_worker_is_ui_worker_zero(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """ui_workers=0, background_workers=1 is single-processor mode: worker 0, type UI."""
        executor = await executor_factory(WorkerConfig(ui_workers=0, background_workers=1))

        async def who(resource: Any, state: object, ctx: InterruptContext) -> Any:
            return resource

        for priority in Priority:
            info = await executor.execute(task(who, priority))
            assert (info.worker_id, info.worker_type) == (0, WorkerType.UI)


class TestFailures:
    async def test_exception_reaches_caller_unchanged_and_worker_survives(
        self, single: TaskExecutor
    ) -> None:
        """A compute that raises gives the caller that very exception; the worker goes on."""
        error = ZeroDivisionError("nope")

        async def broken(resource: object, state: object, ctx: InterruptContext) -> None:
            raise error

        for _ in range(3):
            with pytest.raises(ZeroDivisionError) as info:
                await single.execute(task(broken))
            assert info.value is error
        assert await single.execute(task(const("alive"))) == "alive"
        stats = single.statistics()
        assert (stats.failed, stats.completed) == (3, 1)


class TestCapacity:
    async def test_submit_nowait_on_a_full_lane(self, executor_factory: ExecutorFactory) -> None:
        """submit_nowait raises QueueFullError naming the lane once it holds its capacity."""
        executor = await executor_factory(WorkerConfig(background_buffer_size=2))
        gate = Gate()
        blocker = executor.submit_nowait(task(gate, UI))
        await gate.started.wait()
        queued = [executor.submit_nowait(task(const(i))) for i in range(2)]
        with pytest.raises(QueueFullError, match="the Background lane is full"):
            executor.submit_nowait(task(const(3)))
        assert executor.submit_nowait(task(const("ui"), UI))  # other lanes have room
        gate.release.set()
        await asyncio.gather(blocker, *queued)

    @pytest.mark.parametrize(
        ("priority", "field"),
        [
            (UI, "ui_queue_buffer_size"),
            (Priority.LAST_EFFORT, "last_effort_buffer_size"),
            (Priority.BACKGROUND, "background_buffer_size"),
        ],
    )
    async def test_queue_full_names_the_buffer_field(self, priority: Priority, field: str) -> None:
        """QueueFullError names the WorkerConfig field that sets the full lane's capacity."""
        config = WorkerConfig(**{field: 1})  # type: ignore[arg-type]
        async with TaskExecutor.from_config(config) as executor:
            gate = Gate()
            blocker = executor.submit_nowait(task(gate, UI))
            await gate.started.wait()
            queued = executor.submit_nowait(task(const(1), priority))
            with pytest.raises(QueueFullError, match=rf"raise WorkerConfig\.{field}$"):
                executor.submit_nowait(task(const(2), priority))
            gate.release.set()
            await asyncio.gather(blocker, queued)

    async def test_submit_waits_for_room(self, small_background_lane: TaskExecutor) -> None:
        """submit on a full lane waits until a queued task leaves the lane."""
        executor = small_background_lane
        gate = Gate()
        blocker = executor.submit_nowait(task(gate, UI))
        await gate.started.wait()
        first = executor.submit_nowait(task(const(1)))
        waiting = asyncio.create_task(executor.submit(task(const(2))))
        await wait_until(
            lambda: executor.statistics().waiting_submitters == 1, what="a waiting submitter"
        )
        assert not waiting.done()
        gate.release.set()
        second = await waiting
        assert await asyncio.gather(blocker, first, second) == ["done", 1, 2]

    async def test_withdrawn_task_frees_its_room(self, small_background_lane: TaskExecutor) -> None:
        """Cancelling a queued task frees its place in the lane at once."""
        executor = small_background_lane
        gate = Gate()
        blocker = executor.submit_nowait(task(gate, UI))
        await gate.started.wait()
        doomed = executor.submit_nowait(task(const(1)))
        doomed.cancel()
        replacement = executor.submit_nowait(task(const(2)))
        gate.release.set()
        assert await asyncio.gather(blocker, replacement) == ["done", 2]

    async def test_unbounded_lane(self, executor_factory: ExecutorFactory) -> None:
        """A capacity of 0 never refuses work."""
        executor = await executor_factory(WorkerConfig(ui_queue_buffer_size=0))
        handles = [executor.submit_nowait(task(const(i), UI)) for i in range(1000)]
        assert await asyncio.gather(*handles) == list(range(1000))


class TestLaneOrder:
    def test_reruns_go_first_most_recently_preempted_first(self) -> None:
        """In a lane, reruns precede new work, the latest preempted first; new work is FIFO."""

        lane = Lane(BG, 0)
        loop = asyncio.new_event_loop()  # an execution is a future: it needs a loop
        try:
            items = {n: Execution(None, loop, task(const(n), name=n), BG, NoOpTaskState(), i,
                                  0.0, None)
                     for i, n in enumerate(["new1", "new2", "re1", "re2", "new3"])}  # fmt: skip
            lane.put_new(items["new1"])
            lane.put_new(items["new2"])
            lane.put_rerun(items["re1"])
            lane.put_rerun(items["re2"])
            lane.put_new(items["new3"])
            assert len(lane) == 5
            popped = [lane.get_nowait()[2].task.name for _ in range(5)]
            assert popped == ["re2", "re1", "new1", "new2", "new3"]
            assert lane.take() is None
        finally:
            loop.close()
