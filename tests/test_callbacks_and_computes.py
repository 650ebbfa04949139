"""Observers and computes that misbehave: event callbacks raising BaseExceptions or
defined with ``async def``, computes raising GeneratorExit or executing their own key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _helpers import const, task

from microscheduler import (
    InterruptContext,
    Priority,
    SchedulerEvent,
    TaskExecutor,
    WorkerConfig,
)

UI, BG = Priority.UI, Priority.BACKGROUND


class Escape(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


@pytest.mark.parametrize("kind", ["submitted", "started", "completed", "failed"])
@pytest.mark.parametrize("error", [asyncio.CancelledError, Escape])
async def test_a_callback_raising_a_base_exception_never_disturbs_scheduling(
    kind: str, error: type[BaseException]
) -> None:
    """An on_event callback raising CancelledError (or another BaseException) at any
    event is logged like any callback error: the caller gets its outcome, later
    callbacks still see the event, and the executor goes on."""
    seen: list[str] = []

    def raising(event: SchedulerEvent) -> None:
        if event.kind == kind:
            raise error("from the callback")

    def watching(event: SchedulerEvent) -> None:
        seen.append(event.kind)

    async def fails(resource: object, state: object, ctx: InterruptContext) -> None:
        raise ValueError("the task's own")

    async with TaskExecutor(WorkerConfig(on_event=(raising, watching))) as executor:
        assert await executor.execute(task(const("one"), UI)) == "one"
        with pytest.raises(ValueError, match="the task's own"):
            await executor.execute(task(fails, UI))
        assert await executor.execute(task(const("two"), BG)) == "two"
        stats = executor.statistics()
        assert (stats.running, stats.completed, stats.failed) == (0, 2, 1)
    assert seen.count("submitted") == 3
    assert seen.count(kind) >= 1


def test_an_async_callback_is_refused() -> None:
    """An async def on_event callback (never awaited, it would observe nothing) is refused
    by WorkerConfig with a TypeError saying callbacks are called synchronously."""

    async def callback(event: SchedulerEvent) -> None:
        pass

    class AsyncCallable:
        async def __call__(self, event: SchedulerEvent) -> None:
            pass

    for bad in (callback, AsyncCallable(), (print, callback)):
        with pytest.raises(TypeError, match="called synchronously on the event loop"):
            WorkerConfig(on_event=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("processors", [1, 2])
async def test_a_sync_compute_raising_generator_exit_reaches_its_caller(processors: int) -> None:
    """GeneratorExit raised by a sync compute in its thread reaches the caller as that
    very exception, and the worker serves the next task."""
    error = GeneratorExit("from the thread")

    def compute(resource: object, state: object, ctx: InterruptContext) -> None:
        raise error

    async with TaskExecutor(processors) as executor:
        for priority in (UI, BG):
            with pytest.raises(GeneratorExit) as caught:
                await executor.execute(task(compute, priority))
            assert caught.value is error
            assert await executor.execute(task(const("next"), priority)) == "next"
        assert executor.statistics().failed == 2


async def test_a_generator_exit_an_async_compute_awaited_reaches_its_caller(
    single: TaskExecutor,
) -> None:
    """An async compute awaiting a thread that raises GeneratorExit (asyncio.to_thread)
    gives its caller a GeneratorExit, and the worker serves the next task."""

    def thread() -> None:
        raise GeneratorExit("from asyncio.to_thread")

    async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
        await asyncio.to_thread(thread)

    with pytest.raises(GeneratorExit):
        await single.execute(task(compute, UI))
    assert await single.execute(task(const("next"), UI)) == "next"


@pytest.mark.parametrize(
    "config",
    [
        WorkerConfig(),
        WorkerConfig(ui_workers=1, background_workers=2),
        WorkerConfig(ui_workers=2, background_workers=1, preempt_background=True),
    ],
    ids=["single", "two-background-workers", "preempt-background"],
)
async def test_a_compute_executing_its_own_key_is_refused(config: WorkerConfig) -> None:
    """execute() of its own key from inside a compute raises RuntimeError at once in
    every mode (it would join itself and wait forever); the executor goes on."""
    async with TaskExecutor(config) as executor:

        async def compute(resource: object, state: object, ctx: InterruptContext) -> Any:
            return await executor.execute(task(compute, BG, name="inner", key="self"))

        for priority in (UI, BG):
            with pytest.raises(RuntimeError, match="its key 'self' is the very execution"):
                await executor.execute(task(compute, priority, name="outer", key="self"))
        assert await executor.execute(task(const("next"), BG)) == "next"
