"""Starvation bounds and thrash control: what strict priority does to Background work under
a stream of urgent work, and how each bound changes it."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest
from _helpers import Counter, Gate, const, settle, task, wait_until

import microscheduler._thrash
from microscheduler import InterruptContext, Priority, TaskExecutor, TaskStatus, WorkerConfig
from microscheduler._thrash import THRASH_INTERVAL, THRASH_RUNS, THRASH_WINDOW, ThrashWatch
from microscheduler.pytest_plugin import ExecutorFactory

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND
HANG_GUARD = 10.0  # seconds; only bounds a broken test, decides no ordering


async def ui_stream(executor: TaskExecutor, gate: Gate, rounds: int) -> None:
    """Urgent requests arriving one by one, each just after the Background run restarted."""
    for _ in range(rounds):
        await gate.started.wait()
        gate.started.clear()
        await executor.execute(task(const("answer"), UI))


class TestStrictPriorityStarves:
    async def test_background_never_finishes_under_a_ui_stream(self, single: TaskExecutor) -> None:
        """Without bounds, each urgent request preempts the Background run it restarted
        into: five requests, five preemptions, five wasted runs, no progress."""
        gate = Gate()
        background = single.submit_nowait(task(gate, BG))
        await ui_stream(single, gate, rounds=5)
        stats = single.statistics()
        assert (stats.preempted, stats.wasted_runs) == (5, 5)
        assert not background.done()
        gate.release.set()
        await background

    async def test_max_preemptions_lets_it_finish(self, executor_factory: ExecutorFactory) -> None:
        """With max_preemptions=2 the third urgent request waits for the Background run."""
        executor = await executor_factory(WorkerConfig(max_preemptions=2))
        gate = Gate()
        background = executor.submit_nowait(task(gate, BG))
        await ui_stream(executor, gate, rounds=2)
        await gate.started.wait()
        urgent = executor.submit_nowait(task(const("late"), UI))
        await settle()
        assert background.status is TaskStatus.RUNNING and gate.reasons == ["preempted"] * 2
        gate.release.set()
        assert await asyncio.gather(background, urgent) == ["done", "late"]
        assert executor.statistics().preempted == 2

    async def test_max_background_wait_promotes_it(self, executor_factory: ExecutorFactory) -> None:
        """With max_background_wait=0 the supervisor promotes the Background execution to
        LastEffort once it is due; urgent work no longer preempts it, and it finishes."""
        events: list[Any] = []
        config = WorkerConfig(max_background_wait=0.0, on_event=events.append)
        executor = await executor_factory(config)
        gate = Gate()
        background = executor.submit_nowait(task(gate, BG))
        await wait_until(lambda: executor.statistics().promoted == 1, what="the promotion")
        assert background.priority is LE
        await gate.started.wait()
        urgent = executor.submit_nowait(task(const("ui"), UI))
        await settle()
        assert background.status is TaskStatus.RUNNING
        gate.release.set()
        assert await asyncio.gather(background, urgent) == ["done", "ui"]
        assert executor.statistics().preempted == 0
        promoted = [e for e in events if e.kind == "promoted"]
        assert [(e.reason, e.priority) for e in promoted] == [("aged", LE)]


class TestQuietPeriod:
    async def test_background_waits_for_quiet(self, executor_factory: ExecutorFactory) -> None:
        """With a quiet period, Background work does not start right after urgent work."""
        executor = await executor_factory(WorkerConfig(background_quiet_period=3600.0))
        await executor.execute(task(const(1), UI))
        gate = Gate()
        background = executor.submit_nowait(task(gate, BG))
        await settle()
        assert not gate.started.is_set()
        assert executor.statistics().queued[BG] == 1
        background.cancel()

    async def test_background_starts_once_quiet(self, executor_factory: ExecutorFactory) -> None:
        """Once the quiet period has passed, the supervisor lets Background work start."""
        executor = await executor_factory(WorkerConfig(background_quiet_period=0.01))
        gate = Gate()
        background = executor.submit_nowait(task(gate, BG))
        await executor.execute(task(const(1), UI))
        async with asyncio.timeout(HANG_GUARD):
            await gate.started.wait()
        gate.release.set()
        assert await background == "done"
        assert executor.statistics().preempted == 0


class TestMinimumSlice:
    async def test_young_run_is_not_preempted(self, executor_factory: ExecutorFactory) -> None:
        """A Background run younger than min_background_slice keeps running when urgent
        work arrives; the urgent work waits."""
        executor = await executor_factory(WorkerConfig(min_background_slice=3600.0))
        gate = Gate()
        background = executor.submit_nowait(task(gate, BG))
        await gate.started.wait()
        urgent = executor.submit_nowait(task(const("ui"), UI))
        await settle()
        assert gate.reasons == [] and urgent.status is TaskStatus.QUEUED
        gate.release.set()
        assert await asyncio.gather(background, urgent) == ["done", "ui"]
        assert executor.statistics().preempted == 0

    async def test_run_is_preempted_when_its_slice_ends(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """When the slice ends and urgent work still waits, the run is preempted."""
        executor = await executor_factory(WorkerConfig(min_background_slice=0.01))
        gate = Gate()
        background = executor.submit_nowait(task(gate, BG))
        await gate.started.wait()
        async with asyncio.timeout(HANG_GUARD):
            assert await executor.execute(task(const("ui"), UI)) == "ui"
        assert gate.reasons == ["preempted"]
        gate.release.set()
        await background


class TestWastedRuns:
    @pytest.mark.parametrize(("checkpoint", "wasted"), [(False, 1), (True, 0)])
    async def test_counts_runs_preempted_before_their_first_checkpoint(
        self, single: TaskExecutor, checkpoint: bool, wasted: int
    ) -> None:
        """A preempted run that saved nothing is a wasted run; one that checkpointed is not."""
        started = asyncio.Event()

        async def compute(resource: object, state: Counter, ctx: InterruptContext) -> int:
            if checkpoint and ctx.attempt == 1:
                state.value += 1
                await ctx.save_state(state)
            if ctx.attempt == 1:
                started.set()
                await asyncio.Event().wait()
            return state.value

        background = single.submit_nowait(task(compute, BG, initial_state=Counter))
        await started.wait()
        await single.execute(task(const(None), UI))
        assert await background == int(checkpoint)
        assert single.statistics().wasted_runs == wasted


class _Recorder:
    """A logger that keeps its warnings (event name and keys)."""

    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **values: Any) -> None:
        self.warnings.append((event, values))


class TestThrashWarning:
    def test_warns_once_at_a_sustained_rate_of_wasted_runs(self) -> None:
        """THRASH_RUNS wasted runs within the window warn once, naming min_background_slice
        and wasted_runs; more within the interval stay silent; later thrash warns again."""
        log = _Recorder()
        watch = ThrashWatch(min_background_slice=0.0)
        times = [i * 0.01 for i in range(THRASH_RUNS)]
        warned = [watch.wasted(t, n, log) for n, t in enumerate(times, start=1)]
        assert warned == [False] * (THRASH_RUNS - 1) + [True]
        assert not any(watch.wasted(1.0 + i * 0.01, 100 + i, log) for i in range(50))
        later = THRASH_INTERVAL + 10.0
        assert [watch.wasted(later + i * 0.01, 200 + i, log) for i in range(THRASH_RUNS)][-1]
        assert [event for event, _ in log.warnings] == ["background_thrashing"] * 2
        _event, values = log.warnings[0]
        assert values["wasted_runs"] == THRASH_RUNS and values["min_background_slice"] == 0.0
        assert "min_background_slice" in values["fix"] and "wasted_runs" in values["fix"]

    def test_wasted_runs_spread_wider_than_the_window_do_not_warn(self) -> None:
        """The same number of wasted runs spread over more than the window is no thrash."""
        log = _Recorder()
        watch = ThrashWatch(min_background_slice=0.0)
        step = THRASH_WINDOW / (THRASH_RUNS - 1) * 1.5
        assert not any(watch.wasted(i * step, i + 1, log) for i in range(5 * THRASH_RUNS))
        assert log.warnings == []

    async def test_an_executor_logs_background_thrashing(
        self,
        executor_factory: ExecutorFactory,
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A UI stream preempting a Background run before each checkpoint logs one
        background_thrashing WARNING through the library logger (the window is widened so
        that the machine's speed decides nothing)."""
        monkeypatch.setattr(microscheduler._thrash, "THRASH_WINDOW", math.inf)
        caplog.set_level(logging.WARNING, logger="microscheduler")
        executor = await executor_factory(WorkerConfig())
        gate = Gate()
        background = executor.submit_nowait(task(gate, BG))
        await ui_stream(executor, gate, rounds=THRASH_RUNS + 3)
        gate.release.set()
        await background
        assert executor.statistics().wasted_runs == THRASH_RUNS + 3
        messages = [r.getMessage() for r in caplog.records if r.name == "microscheduler"]
        (warning,) = [m for m in messages if "background_thrashing" in m]
        assert f"wasted_runs={THRASH_RUNS}" in warning
        assert "min_background_slice=0.0" in warning


class TestHardBound:
    async def test_aged_work_runs_while_ui_work_never_stops(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """Under a UI stream that never leaves the UI lane empty, an aged Background
        execution is promoted to LastEffort, then after a second max_background_wait to
        UI, and finishes while the stream still goes on."""
        events: list[Any] = []
        config = WorkerConfig(max_background_wait=0.01, on_event=events.append)
        executor = await executor_factory(config)
        stop = asyncio.Event()
        answered = 0

        async def client(resource: object, state: object, ctx: InterruptContext) -> None:
            # Each request queues the next one before it ends: the UI lane never empties.
            nonlocal answered
            answered += 1
            await asyncio.sleep(0)  # a request's work yields to the loop, as real work does
            if not stop.is_set():
                executor.submit_nowait(task(client, UI, name="client"))

        executor.submit_nowait(task(client, UI, name="client"))
        executor.submit_nowait(task(client, UI, name="client"))
        aged = await executor.submit(task(const("indexed"), BG, name="aged"))
        try:
            assert await asyncio.wait_for(aged, HANG_GUARD) == "indexed"
            assert not stop.is_set()  # the stream was still going when it finished
        finally:
            stop.set()
            await executor.join()
        promoted = [(e.reason, e.priority) for e in events if e.kind == "promoted"]
        assert promoted == [("aged", LE), ("aged", UI)]
        assert answered > 2
