"""Memory under every timed policy: once its handles are dropped, a finished execution is
freed at once, whatever deadline the supervisor (or the loop) still holds for it."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
from _helpers import settle, task

from microscheduler import InterruptContext, Priority, TaskExecutor, WorkerConfig

UI, BG = Priority.UI, Priority.BACKGROUND
HOUR = 3600.0  # every deadline below is far away: it must not be what frees anything
RUNS = 20


class Payload:
    """A result whose liveness the test can see (a weakref to it)."""


async def _preempted_background_runs(
    executor: TaskExecutor, results: list[Any], *, wait_for_interrupt: bool
) -> None:
    """Background runs, each displaced by UI work while it runs (so the grace, slice and
    warning deadlines of its preemption are all pending), then ending: by itself once
    interrupted (``wait_for_interrupt``), or when the UI work has been submitted."""
    for _ in range(RUNS):
        started, displaced = asyncio.Event(), asyncio.Event()

        async def compute(
            resource: object,
            state: object,
            ctx: InterruptContext,
            started: asyncio.Event = started,
            displaced: asyncio.Event = displaced,
        ) -> Payload:
            started.set()
            if ctx.attempt == 1:
                if wait_for_interrupt:
                    await ctx.wait()
                else:
                    await displaced.wait()
            payload = Payload()
            results.append(weakref.ref(payload))
            return payload

        handle = await executor.submit(task(compute, BG))
        await started.wait()
        ui = await executor.submit(task(_payload(results), UI))
        displaced.set()
        await ui
        await handle
        del handle, ui


def _payload(results: list[Any]) -> Any:
    async def compute(resource: object, state: object, ctx: InterruptContext) -> Payload:
        payload = Payload()
        results.append(weakref.ref(payload))
        return payload

    return compute


async def _plain_runs(
    executor: TaskExecutor,
    results: list[Any],
    *,
    timeout: float | None = None,
    priorities: tuple[Priority, ...] = (UI, BG),
) -> None:
    for priority in priorities * (RUNS // len(priorities)):
        handle = await executor.submit(task(_payload(results), priority), timeout=timeout)
        await handle
        del handle


POLICIES = {
    "aging": WorkerConfig(max_background_wait=HOUR),
    "slices": WorkerConfig(min_background_slice=HOUR, interrupt_warning=None),
    "quiet-periods": WorkerConfig(ui_workers=1, background_workers=1, background_quiet_period=HOUR),
    "grace": WorkerConfig(interrupt_grace=HOUR, interrupt_warning=None),
    "interrupt-warnings": WorkerConfig(interrupt_warning=HOUR),
    "submit-timeout": WorkerConfig(),
}


@pytest.mark.parametrize("policy", list(POLICIES))
async def test_finished_executions_are_freed_under_every_timed_policy(policy: str) -> None:
    """With each timed policy on and its deadlines an hour away, every execution (and its
    result) is collected as soon as its handles are dropped."""
    config = POLICIES[policy]
    results: list[Any] = []
    async with TaskExecutor(config) as executor:
        if policy == "aging":
            await _plain_runs(executor, results)
        elif policy == "quiet-periods":
            # Each UI end starts an hour-long quiet period: Background work would wait.
            await _plain_runs(executor, results, priorities=(UI,))
        elif policy == "submit-timeout":
            await _plain_runs(executor, results, timeout=HOUR)
        else:
            await _preempted_background_runs(
                executor, results, wait_for_interrupt=policy != "slices"
            )
        await settle()  # the loop lets go of the callback that woke this test
        gc.collect()
        alive = sum(ref() is not None for ref in results)
        assert len(results) >= RUNS
        assert alive == 0, f"{alive} of {len(results)} results still alive under {policy}"
