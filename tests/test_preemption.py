"""Preemption, reruns and resumable state (design rules 3 to 5 in docs/design.md)."""

from __future__ import annotations

import asyncio
import gc
import os
import types
from typing import Any

import pytest
from _helpers import Counter, Gate, const, task

import microscheduler
from microscheduler import (
    InterruptContext,
    Priority,
    TaskExecutor,
    TaskInterruptedError,
    TaskStatus,
)

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


class Stepper:
    """A resumable Background compute: counts to ``steps``, checkpointing every step.

    Each step awaits ``tick`` (a fresh event per step when ``gated``) so the test decides
    exactly where a preemption lands; ``at_step[n]`` is set when step ``n`` is reached.
    """

    def __init__(self, steps: int, *, checkpoint: bool = True) -> None:
        self.steps = steps
        self.checkpoint = checkpoint
        self.executed = 0
        self.at_step = {n: asyncio.Event() for n in range(steps + 1)}
        self.ticks = {n: asyncio.Event() for n in range(steps + 1)}
        self.active = 0
        self.overlapped = False
        self.starts: list[tuple[int, int]] = []  # (attempt, value at start)

    async def __call__(self, resource: object, state: Counter, ctx: InterruptContext) -> int:
        self.active += 1
        self.overlapped |= self.active > 1
        self.starts.append((ctx.attempt, state.value))
        try:
            while state.value < self.steps:
                self.at_step[state.value].set()
                await self.ticks[state.value].wait()
                state.value += 1
                self.executed += 1
                if self.checkpoint:
                    await ctx.save_state(state)
            return state.value
        finally:
            self.active -= 1

    def open_all(self) -> None:
        for tick in self.ticks.values():
            tick.set()


class TestSingleProcessorPreemption:
    @pytest.mark.parametrize("urgent", [UI, LE])
    async def test_urgent_work_preempts_background_at_once(
        self, single: TaskExecutor, urgent: Priority
    ) -> None:
        """UI or LastEffort work interrupts a running Background task (reason
        "preempted"); the Background caller later gets the rerun's result."""
        contexts: list[InterruptContext] = []
        started = asyncio.Event()

        async def background(resource: object, state: object, ctx: InterruptContext) -> str:
            contexts.append(ctx)
            if ctx.attempt == 1:
                started.set()
                await asyncio.Event().wait()  # only a preemption ends this run
            return f"attempt {ctx.attempt}"

        handle = single.submit_nowait(task(background, BG))
        await started.wait()
        urgent_handle = single.submit_nowait(task(const("urgent"), urgent))
        assert contexts[0].is_interrupted()
        assert contexts[0].reason == "preempted"
        assert await urgent_handle == "urgent"
        assert await handle == "attempt 2"
        stats = single.statistics()
        assert (stats.preempted, stats.rescheduled, stats.completed) == (1, 1, 2)

    async def test_preempted_task_status(self, single: TaskExecutor) -> None:
        """While waiting for its rerun a preempted task reports PREEMPTED and is queued."""
        bg = Gate()
        ui = Gate()
        handle = single.submit_nowait(task(bg, BG))
        await bg.started.wait()
        ui_handle = single.submit_nowait(task(ui, UI))
        await ui.started.wait()
        assert handle.status is TaskStatus.PREEMPTED
        assert single.statistics().queued[BG] == 1
        ui.release.set()
        bg.release.set()
        assert await asyncio.gather(ui_handle, handle) == ["done", "done"]
        assert bg.attempts == [1, 2]

    async def test_resumes_from_last_snapshot(self, single: TaskExecutor) -> None:
        """A preempted stateful task is restored to its last checkpoint before its rerun,
        so no saved step is done twice, and its caller gets one result."""
        stepper = Stepper(10)
        state = Counter()
        handle = single.submit_nowait(task(stepper, BG, initial_state=state))
        for n in range(4):
            stepper.ticks[n].set()
        await stepper.at_step[4].wait()
        assert await single.execute(task(const("ui"), UI)) == "ui"
        stepper.open_all()
        assert await handle == 10
        assert stepper.starts == [(1, 0), (2, 4)]
        assert state.restored == [4]
        assert stepper.executed == 10  # not 14: the four saved steps were not redone
        assert not stepper.overlapped

    async def test_interrupt_snapshot_is_the_latest_checkpoint(self, single: TaskExecutor) -> None:
        """interrupt.snapshot is the task's saved_state on the first run, follows each
        save_state, and is what the rerun after a preemption was restored from."""
        seen: list[tuple[int, bytes | None, bytes | None]] = []
        started = asyncio.Event()

        async def compute(resource: object, state: Counter, ctx: InterruptContext) -> int:
            before = ctx.snapshot
            state.value += 1
            await ctx.save_state(state)
            seen.append((ctx.attempt, before, ctx.snapshot))
            if ctx.attempt == 1:
                started.set()
                await asyncio.Event().wait()  # only a preemption ends this run
            return state.value

        handle = single.submit_nowait(task(compute, BG, initial_state=Counter(), saved_state=b"41"))
        await started.wait()
        await single.execute(task(const("ui"), UI))
        assert await handle == 43
        assert seen == [(1, b"41", b"42"), (2, b"42", b"43")]

    async def test_without_checkpoints_the_rerun_starts_over(self, single: TaskExecutor) -> None:
        """Without save_state, the rerun starts from the initial state again."""
        stepper = Stepper(6, checkpoint=False)
        handle = single.submit_nowait(task(stepper, BG, initial_state=Counter()))
        for n in range(3):
            stepper.ticks[n].set()
        await stepper.at_step[3].wait()
        await single.execute(task(const("ui"), UI))
        stepper.open_all()
        assert await handle == 6
        # The state object itself kept its progress (it was never restored), so the
        # rerun continued from 3: only a saved snapshot is ever restored.
        assert stepper.starts == [(1, 0), (2, 3)]

    async def test_fifty_preemptions_in_a_row(self, single: TaskExecutor) -> None:
        """Preempting the same task 50 times never deadlocks, never overlaps its runs, and
        its caller gets exactly one result, from run 51."""
        runs = [asyncio.Event() for _ in range(52)]
        active = 0
        overlapped = False

        async def background(resource: object, state: Counter, ctx: InterruptContext) -> int:
            nonlocal active, overlapped
            active += 1
            overlapped |= active > 1
            try:
                state.value += 1
                await ctx.save_state(state)
                runs[ctx.attempt].set()
                if ctx.attempt <= 50:
                    await asyncio.Event().wait()
                return ctx.attempt
            finally:
                active -= 1

        handle = single.submit_nowait(task(background, BG, initial_state=Counter()))
        for attempt in range(1, 51):
            await runs[attempt].wait()
            assert await single.execute(task(const(attempt), UI)) == attempt
        assert await handle == 51
        assert not overlapped
        stats = single.statistics()
        assert (stats.preempted, stats.rescheduled) == (50, 50)

    async def test_urgent_runs_are_never_preempted(self, single: TaskExecutor) -> None:
        """A running UI task is not interrupted by more UI or LastEffort work."""
        gate = Gate()
        contexts: list[InterruptContext] = []

        async def ui(resource: object, state: object, ctx: InterruptContext) -> str:
            contexts.append(ctx)
            return await gate(resource, state, ctx)

        first = single.submit_nowait(task(ui, UI))
        await gate.started.wait()
        later = [single.submit_nowait(task(const(p), p)) for p in (UI, LE)]
        assert not contexts[0].is_interrupted()
        gate.release.set()
        assert await asyncio.gather(first, *later) == ["done", UI, LE]
        assert single.statistics().preempted == 0

    async def test_preempted_run_ends_before_the_urgent_work_starts(
        self, single: TaskExecutor
    ) -> None:
        """The urgent compute starts only after the preempted run has fully returned,
        even when the victim takes several steps to wind down."""
        events: list[str] = []
        started = asyncio.Event()

        async def background(resource: object, state: object, ctx: InterruptContext) -> None:
            try:
                started.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                events.append("victim caught")
                await ctx.save_state(state)  # type: ignore[arg-type]
                events.append("victim ended")
                raise

        async def urgent(resource: object, state: object, ctx: InterruptContext) -> None:
            events.append("urgent started")

        handle = single.submit_nowait(task(background, BG, initial_state=Counter))
        await started.wait()
        await single.execute(task(urgent, UI))
        assert events == ["victim caught", "victim ended", "urgent started"]
        handle.cancel()

    async def test_attempt_counts_runs(self, single: TaskExecutor) -> None:
        """attempt is 1 on the first run and grows by one per rerun."""
        gate = Gate()
        handle = single.submit_nowait(task(gate, BG))
        await gate.started.wait()
        for _ in range(2):
            gate.started.clear()
            await single.execute(task(const(None), UI))
            await gate.started.wait()
        gate.release.set()
        await handle
        assert gate.attempts == [1, 2, 3]
        assert handle.attempt == 3


class TestNoReschedule:
    async def test_cancelled_before_returning(self, single: TaskExecutor) -> None:
        """no_reschedule() then a preemption: the run is cancelled, not rerun, and the
        caller gets TaskInterruptedError; it counts as a preemption, not a reschedule."""
        gate = Gate()

        async def background(resource: object, state: object, ctx: InterruptContext) -> Any:
            ctx.no_reschedule()
            return await gate(resource, state, ctx)

        handle = single.submit_nowait(task(background, BG, name="once"))
        await gate.started.wait()
        await single.execute(task(const(None), UI))
        with pytest.raises(TaskInterruptedError, match="'once'"):
            await handle
        assert gate.attempts == [1]
        stats = single.statistics()
        assert (stats.preempted, stats.rescheduled) == (1, 0)

    async def test_caller_gets_what_the_run_returned(self, single: TaskExecutor) -> None:
        """A no_reschedule run that catches the cancellation and returns gives that value."""
        started = asyncio.Event()

        async def background(resource: object, state: object, ctx: InterruptContext) -> str:
            ctx.no_reschedule()
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                return f"partial ({ctx.reason})"
            return "never"

        handle = single.submit_nowait(task(background, BG))
        await started.wait()
        await single.execute(task(const(None), UI))
        assert await handle == "partial (preempted)"

    async def test_no_effect_on_a_run_that_completes(self, single: TaskExecutor) -> None:
        """no_reschedule() on a run that is never interrupted changes nothing."""

        async def compute(resource: object, state: object, ctx: InterruptContext) -> str:
            ctx.no_reschedule()
            return "fine"

        assert await single.execute(task(compute)) == "fine"


class TestGrace:
    async def test_preempted_run_may_return_within_grace(self, grace: TaskExecutor) -> None:
        """With interrupt_grace, a run that sees is_interrupted() can wind down uncancelled;
        its return value is discarded and the task is rerun."""
        started = asyncio.Event()
        seen: list[str] = []

        async def background(resource: object, state: object, ctx: InterruptContext) -> str:
            if ctx.attempt == 1:
                started.set()
                await ctx.wait()
                for _ in range(3):
                    await asyncio.sleep(0)  # not cancelled: the grace is still running
                seen.append(f"wound down ({ctx.reason})")
                return "discarded"
            return "rerun"

        handle = grace.submit_nowait(task(background, BG))
        await started.wait()
        assert await grace.execute(task(const("ui"), UI)) == "ui"
        assert await handle == "rerun"
        assert seen == ["wound down (preempted)"]

    async def test_grace_with_no_reschedule_delivers_the_return_value(
        self, grace: TaskExecutor
    ) -> None:
        """A run that returns within the grace after no_reschedule() gives its value."""
        started = asyncio.Event()

        async def background(resource: object, state: object, ctx: InterruptContext) -> str:
            started.set()
            await ctx.wait()
            ctx.no_reschedule()
            return "stopped early"

        handle = grace.submit_nowait(task(background, BG))
        await started.wait()
        await grace.execute(task(const(None), UI))
        assert await handle == "stopped early"

    async def test_caller_cancel_ends_the_grace(self, grace: TaskExecutor) -> None:
        """A caller cancel during a preemption's grace cancels the run at once."""
        started = asyncio.Event()
        reasons: list[str | None] = []

        async def background(resource: object, state: object, ctx: InterruptContext) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                reasons.append(ctx.reason)

        handle = grace.submit_nowait(task(background, BG))
        await started.wait()
        ui = grace.submit_nowait(task(const("ui"), UI))
        handle.cancel()
        assert await ui == "ui"
        assert reasons == ["cancelled"]
        assert grace.statistics().rescheduled == 0


class TestNoGarbageCycles:
    async def test_a_preemption_leaves_no_cycle_for_the_collector(
        self, single: TaskExecutor
    ) -> None:
        """The cancellation thrown into a preempted compute must not stay referenced from
        a frame its own traceback holds: each such cycle (the exception, its traceback, the
        compute's frames) would wait for the garbage collector, on every preemption."""
        package = os.path.dirname(microscheduler.__file__)
        frames_of_the_package = []
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(3):
                bg = Gate()
                handle = single.submit_nowait(task(bg, BG))
                await bg.started.wait()
                assert await single.submit_nowait(task(const("ui"), UI)) == "ui"
                bg.release.set()
                assert await handle == "done"
                assert bg.attempts == [1, 2]
            gc.collect()
            frames_of_the_package = [
                obj.f_code.co_filename
                for obj in gc.garbage
                if isinstance(obj, types.FrameType) and obj.f_code.co_filename.startswith(package)
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert single.statistics().preempted == 3
        assert frames_of_the_package == []
