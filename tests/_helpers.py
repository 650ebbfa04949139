"""Test helpers: resumable states, event-gated computes, task shorthands and waiting on state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from benchmarks import _outcomes
from microscheduler import InterruptContext, Priority, Task, TaskExecutor


class Counter(_outcomes.Counter):
    """A resumable step counter that also records every value it was restored to."""

    __slots__ = ("restored",)

    def __init__(self, value: int = 0) -> None:
        super().__init__(value)
        self.restored: list[int] = []

    def restore(self, data: bytes) -> None:
        super().restore(data)
        self.restored.append(self.value)


class Gate:
    """A compute that reports it started and then waits to be released.

    ``started`` is set when a run begins; the run returns ``result`` once ``release`` is
    set. It records every attempt it saw and whether runs ever overlapped.
    """

    def __init__(self, result: Any = "done") -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.result = result
        self.attempts: list[int] = []
        self.reasons: list[str | None] = []
        self.active = 0
        self.overlapped = False

    async def __call__(self, resource: object, state: Any, ctx: InterruptContext) -> Any:
        self.active += 1
        self.overlapped |= self.active > 1
        self.attempts.append(ctx.attempt)
        try:
            self.started.set()
            await self.release.wait()
            return self.result
        finally:
            self.reasons.append(ctx.reason)
            self.active -= 1


def task(
    compute: Any,
    priority: Priority = Priority.BACKGROUND,
    name: str = "t",
    **kwargs: Any,
) -> Task[Any]:
    """Build a task with less ceremony."""
    return Task(name=name, compute=compute, priority=priority, **kwargs)


def const(value: Any) -> Any:
    """A compute that returns ``value`` at once."""

    async def compute(resource: object, state: Any, ctx: InterruptContext) -> Any:
        return value

    return compute


def state_of(executor: TaskExecutor) -> str:
    """The executor's lifecycle state, as its ``repr`` shows it (``"running"``, ``"stopping"``)."""
    return repr(executor).split()[1]


async def wait_until(predicate: Callable[[], bool], *, what: str, steps: int = 10_000) -> None:
    """Yield to the event loop until ``predicate()`` holds.

    The wait is for observable state (``statistics()``, a handle's status), never a count of
    loop iterations that happens to be enough today. A condition that does not hold within
    ``steps`` iterations fails the test, naming ``what`` it waited for, instead of hanging.
    """
    for _ in range(steps):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"gave up waiting for {what} after {steps} event loop iterations")


async def settle() -> None:
    """Let every ready callback run (a few loop iterations); decides no ordering, only
    gives something that must not happen the chance to."""
    for _ in range(5):
        await asyncio.sleep(0)
