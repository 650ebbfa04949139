"""What type checkers infer from the public API: checked by mypy --strict and basedpyright.

This file is never run; ``tests/test_typing.py`` runs both checkers on it, and every
``assert_type`` below is an error for either checker if the hints regress.
"""

from __future__ import annotations

import asyncio
from typing import assert_type

from microscheduler import InterruptContext, Priority, Task, TaskExecutor, TaskHandle


async def count(resource: object, state: object, interrupt: InterruptContext) -> int:
    """An async compute returning an int."""
    return 1


def greet(resource: object, state: object, interrupt: InterruptContext) -> str:
    """A sync compute returning a str."""
    return "hi"


async def handles_give_their_result_type(executor: TaskExecutor) -> None:
    """Awaiting a handle, its result() and gather over handles keep the compute's type."""
    counting = await executor.submit(Task(name="count", compute=count))
    greeting = executor.submit_nowait(Task(name="greet", compute=greet))
    assert_type(counting, TaskHandle[int])
    assert_type(greeting, TaskHandle[str])
    assert_type(await counting, int)
    assert_type(greeting.result(), str)
    both = await asyncio.gather(counting, greeting)
    assert_type(both, tuple[int, str])
    done, _ = await asyncio.wait([counting])
    for finished in done:
        assert_type(finished.result(), int)
    assert_type(await asyncio.wait_for(counting, 1.0), int)
    assert_type(await asyncio.shield(greeting), str)
    assert_type(await executor.execute(Task(name="count", compute=count)), int)


async def int_priorities_are_accepted(executor: TaskExecutor) -> None:
    """A lane may be named by its int value (0 UI, 1 LastEffort, 2 Background)."""
    task = Task(name="count", compute=count, priority=1)
    assert_type(await executor.execute(task, 0), int)
    assert_type(await executor.execute(task, priority=Priority.UI), int)
    handle = await executor.submit(task, priority=2)
    assert_type(executor.submit_nowait(task, 1), TaskHandle[int])
    assert_type(handle.promote(0), bool)
