"""Property tests of the scheduling rules of docs/design.md under random interleavings.

Each example builds a random mix of tasks (lanes, lengths, checkpoints, failures, sync
computes, no_reschedule) and of callers (awaiting, cancelling after a random number of
loop steps, using a timeout, cancelling the handle), optionally with a shutdown in the
middle, and runs it to the end on a fresh event loop. Every interleaving is decided by
loop iterations (``sleep(0)``), so a failing example replays exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from _helpers import Counter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microscheduler import (
    ExecutorShutdownError,
    InterruptContext,
    Priority,
    StateRestoreError,
    Task,
    TaskExecutor,
    TaskInterruptedError,
    WorkerConfig,
)


class Boom(Exception):
    """The failure a random compute raises."""


@dataclasses.dataclass(frozen=True)
class Job:
    priority: Priority
    steps: int
    checkpoint: bool
    fails: bool
    sync: bool
    no_reschedule: bool
    submit_after: int
    action: str  # "await" | "cancel" | "timeout" | "handle_cancel"
    act_after: int


jobs = st.builds(
    Job,
    priority=st.sampled_from(Priority),
    steps=st.integers(0, 6),
    checkpoint=st.booleans(),
    fails=st.booleans(),
    sync=st.sampled_from([False, False, False, True]),
    no_reschedule=st.sampled_from([False, False, True]),
    submit_after=st.integers(0, 8),
    action=st.sampled_from(["await", "await", "cancel", "timeout", "handle_cancel"]),
    act_after=st.integers(0, 10),
)

MODES = {
    "single": WorkerConfig(),
    "multi": WorkerConfig(ui_workers=1, background_workers=2),
    "multi_preempt": WorkerConfig(ui_workers=2, background_workers=2, preempt_background=True),
    "single_grace": WorkerConfig(interrupt_grace=0.0005),
}


class Monitor:
    """Records runs and checks the invariants that must hold at every step."""

    def __init__(self, single: bool) -> None:
        self.single = single
        self.active: dict[int, int] = {}
        self.running = 0
        self.saved: dict[int, int] = {}
        self.violations: list[str] = []

    def enter(self, index: int, state: Counter) -> None:
        self.active[index] = self.active.get(index, 0) + 1
        self.running += 1
        if self.active[index] > 1:
            self.violations.append(f"task {index} ran twice at once")
        if self.single and self.running > 1:
            self.violations.append("two computes ran at once in single-processor mode")
        if state.value < self.saved.get(index, 0):
            self.violations.append(f"task {index} lost its checkpoint {self.saved[index]}")

    def leave(self, index: int) -> None:
        self.active[index] -= 1
        self.running -= 1


def make_compute(index: int, job: Job, monitor: Monitor) -> Any:
    def step_sync(state: Counter, ctx: InterruptContext) -> int:
        while state.value < job.steps:
            if ctx.is_interrupted():
                return -1
            time.sleep(0)
            state.value += 1
            if job.checkpoint:
                ctx.save_state_nowait(state)
                monitor.saved[index] = state.value
        return state.value

    def sync_compute(resource: object, state: Counter, ctx: InterruptContext) -> int:
        if job.no_reschedule:
            ctx.no_reschedule()
        monitor.enter(index, state)
        try:
            value = step_sync(state, ctx)
            if job.fails:
                raise Boom(index)
            return value
        finally:
            monitor.leave(index)

    async def async_compute(resource: object, state: Counter, ctx: InterruptContext) -> int:
        if job.no_reschedule:
            ctx.no_reschedule()
        monitor.enter(index, state)
        try:
            while state.value < job.steps:
                await asyncio.sleep(0)
                state.value += 1
                if job.checkpoint:
                    await ctx.save_state(state)
                    monitor.saved[index] = state.value
            if job.fails:
                raise Boom(index)
            return state.value
        finally:
            monitor.leave(index)

    return sync_compute if job.sync else async_compute


async def steps(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def call(executor: TaskExecutor, index: int, job: Job, monitor: Monitor) -> str:
    """One caller: returns the kind of the single outcome it got."""
    await steps(job.submit_after)
    task = Task(
        name=f"job{index}",
        compute=make_compute(index, job, monitor),
        priority=job.priority,
        initial_state=Counter(),
    )
    try:
        if job.action == "await":
            value = await executor.execute(task)
        elif job.action == "timeout":
            value = await executor.execute(task, timeout=job.act_after * 0.0002)
        elif job.action == "handle_cancel":
            handle = await executor.submit(task)
            await steps(job.act_after)
            handle.cancel()
            value = await handle
        else:
            inner = asyncio.create_task(executor.execute(task))
            await steps(job.act_after)
            inner.cancel()
            value = await inner
    except asyncio.CancelledError:
        return "cancelled"
    except TimeoutError:
        return "timeout"
    except Boom:
        return "failed"
    except ExecutorShutdownError:
        return "shutdown"
    except TaskInterruptedError:
        return "interrupted"
    except StateRestoreError:  # pragma: no cover - states here always restore
        return "restore"
    if value != job.steps and not (job.sync and value == -1 and job.no_reschedule):
        return f"wrong result {value}"
    return "completed"


async def scenario(mode: str, plan: list[Job], shutdown_after: int | None) -> None:
    config = MODES[mode]
    monitor = Monitor(config.single_processor)
    executor = TaskExecutor.from_config(config)
    await executor.start()
    callers = [asyncio.create_task(call(executor, i, job, monitor)) for i, job in enumerate(plan)]
    if shutdown_after is not None:
        await steps(shutdown_after)
        await executor.shutdown()
    async with asyncio.timeout(30):  # a hang fails the example instead of the whole run
        outcomes = await asyncio.gather(*callers)
    await executor.shutdown(drain=True)
    assert monitor.violations == []
    allowed = {"completed", "failed", "cancelled", "timeout", "shutdown", "interrupted"}
    assert set(outcomes) <= allowed, outcomes
    for job, outcome in zip(plan, outcomes, strict=True):
        if job.action == "await" and shutdown_after is None:
            # Nobody gave up on it and nothing shut it down: it must have run to its end.
            expected = {"failed"} if job.fails else {"completed"}
            if job.no_reschedule:
                expected |= {"interrupted", "completed"}
            assert outcome in expected, (job, outcome)
    stats = executor.statistics()
    assert stats.running == 0 and sum(stats.queued.values()) == 0
    assert stats.submitted == stats.completed + stats.failed + stats.cancelled + stats.timed_out
    assert stats.rescheduled <= stats.preempted
    if not config.single_processor and not config.preempt_background:
        assert stats.preempted == 0


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    mode=st.sampled_from(sorted(MODES)),
    plan=st.lists(jobs, min_size=1, max_size=10),
    shutdown_after=st.one_of(st.none(), st.none(), st.integers(0, 12)),
)
def test_every_call_gets_one_outcome_and_no_task_overlaps(
    mode: str, plan: list[Job], shutdown_after: int | None
) -> None:
    """Under random submits, cancels, timeouts, failures, preemptions and shutdowns,
    every caller gets exactly one allowed outcome, no task runs twice at once, only one
    compute runs at a time in single-processor mode, checkpoints are never lost, and the
    statistics add up."""
    asyncio.run(scenario(mode, plan, shutdown_after))
