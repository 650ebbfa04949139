"""The soak run's workload: the mix of calls it makes, and the executors it makes them on.

Every call is one of the :data:`KINDS`, drawn by weight, in one of the three lanes (mostly
Background): computes that return at once, step and checkpoint, fail, get cancelled by
their caller or through their handle, time out (``execute(timeout=)`` and
``Task.timeout``), call ``no_reschedule()``, run in a worker thread, or have a state that
cannot be restored. Each kind names the outcomes it may end with; :func:`one_call` makes
one call and returns the outcome it got. :data:`PHASES` are the executor configurations
the run goes through, with each one's share of the tasks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from typing import Any

from microscheduler import InterruptContext, Priority, Task, TaskExecutor, TaskHandle, WorkerConfig

from ._outcomes import Boom, Unrestorable, classify
from ._outcomes import Counter as Progress

__all__ = ("KINDS", "KIND_NAMES", "KIND_WEIGHTS", "PHASES", "Phase", "one_call")

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


# -- computes -----------------------------------------------------------------------------


async def quick(resource: object, state: object, ctx: InterruptContext) -> int:
    return 0


def stepper(steps: int, *, fail: bool = False, no_reschedule: bool = False) -> Any:
    """An async compute counting to ``steps``, checkpointing after every step."""

    async def compute(resource: object, state: Progress, ctx: InterruptContext) -> int:
        if no_reschedule:
            ctx.no_reschedule()
        while state.value < steps:
            await asyncio.sleep(0)
            state.value += 1
            await ctx.save_state(state)
        if fail:
            raise Boom(steps)
        return state.value

    return compute


def sync_stepper(steps: int) -> Any:
    """A sync compute (run in a thread) that polls for interruption between steps."""

    def compute(resource: object, state: Progress, ctx: InterruptContext) -> int:
        while state.value < steps:
            if ctx.is_interrupted():
                return -1  # discarded: an interrupted run is rerun or already answered
            state.value += 1
            ctx.save_state_nowait(state)
        return state.value

    return compute


# -- one call -----------------------------------------------------------------------------

# kind: (weight, outcomes it may end with)
KINDS: dict[str, tuple[int, frozenset[str]]] = {
    "quick": (28, frozenset({"result"})),
    "steps": (28, frozenset({"result"})),
    "fail": (8, frozenset({"failed"})),
    "cancel": (
        6,
        frozenset({"cancelled", "cancelled late/result", "cancelled/run had returned", "result"}),
    ),
    "handle_cancel": (6, frozenset({"cancelled", "result"})),
    "call_timeout": (6, frozenset({"timeout", "result"})),
    "task_timeout": (6, frozenset({"timeout", "result"})),
    "no_reschedule": (6, frozenset({"result", "interrupted"})),
    "sync": (4, frozenset({"result"})),
    "restore_error": (2, frozenset({"restore"})),
}
KIND_NAMES = tuple(KINDS)
KIND_WEIGHTS = tuple(weight for weight, _ in KINDS.values())
_PRIORITIES = (UI, LE, BG)
_PRIORITY_WEIGHTS = (10, 10, 80)


async def _steps(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _execute_keeping_handle(
    executor: TaskExecutor, task: Task[Any], handles: list[TaskHandle[Any]]
) -> Any:
    handle = await executor.submit(task)
    handles.append(handle)
    return await handle


def _watched(compute: Callable[..., Any], returned: list[bool]) -> Any:
    """Wrap an async compute to note whether a run returned without being interrupted."""

    async def watched(resource: object, state: Any, ctx: InterruptContext) -> Any:
        value = await compute(resource, state, ctx)
        if ctx.reason is None:
            returned.append(True)
        return value

    return watched


def _ended_as(handle: TaskHandle[Any]) -> str:
    """The outcome an execution ended with, for a caller that was cancelled too late."""
    try:
        handle.result()
    except BaseException as exc:
        return classify(exc)
    return "result"


async def one_call(executor: TaskExecutor, rng: random.Random, kind: str) -> tuple[str, bool]:
    """Make one call of ``kind``; return its outcome and whether its result was right."""
    priority = rng.choices(_PRIORITIES, _PRIORITY_WEIGHTS)[0]
    steps = rng.randint(1, 8)
    expected: int | None = steps
    task_timeout: float | None = None
    state: Any = Progress()
    saved: bytes | None = None
    compute: Callable[..., Any]
    if kind == "quick":
        compute, expected = quick, 0
    elif kind == "fail":
        compute = stepper(rng.randint(0, 2), fail=True)
    elif kind == "task_timeout":
        compute, task_timeout = stepper(rng.randint(1, 400)), rng.choice((0.0, 0.0002, 0.001))
        expected = None
    elif kind == "no_reschedule":
        compute = stepper(steps, no_reschedule=True)
    elif kind == "sync":
        compute = sync_stepper(steps)
    elif kind == "restore_error":
        compute, state, saved = stepper(steps), Unrestorable(), b"?"
    else:
        compute = stepper(steps)
    returned: list[bool] = []
    if kind == "cancel":
        compute = _watched(compute, returned)
    task = Task(
        name=kind,
        compute=compute,
        priority=priority,
        initial_state=state,
        saved_state=saved,
        timeout=task_timeout,
    )
    handles: list[TaskHandle[Any]] = []
    try:
        if kind == "cancel":
            # execute() spelled out (submit, then await the handle) to keep the handle: a
            # cancel that lands after the execution ended still cancels the caller.
            inner = asyncio.ensure_future(_execute_keeping_handle(executor, task, handles))
            await _steps(rng.randint(1, 6))
            inner.cancel()
            value = await inner
        elif kind == "handle_cancel":
            handle = executor.submit_nowait(task)
            await _steps(rng.randint(0, 6))
            handle.cancel()
            value = await handle
        elif kind == "call_timeout":
            value = await executor.execute(task, timeout=rng.choice((0.0, 0.0002, 0.001)))
        else:
            value = await executor.execute(task)
    except asyncio.CancelledError:
        if handles and handles[0].done() and not handles[0].cancelled():
            return f"cancelled late/{_ended_as(handles[0])}", True
        if returned:
            # The caller's cancel landed while its run was returning a result nobody got.
            return "cancelled/run had returned", True
        return "cancelled", True
    except Exception as exc:
        return classify(exc), True
    return "result", expected is None or value == expected


# -- phases -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str
    config: WorkerConfig
    share: float


PHASES = (
    Phase("single-processor", WorkerConfig(ui_queue_buffer_size=0, background_buffer_size=0), 0.6),
    Phase(
        "multi-worker",
        WorkerConfig(ui_workers=2, background_workers=3, background_buffer_size=0),
        0.2,
    ),
    Phase(
        "multi-worker preempt_background",
        WorkerConfig(
            ui_workers=1, background_workers=3, preempt_background=True, background_buffer_size=0
        ),
        0.2,
    ),
)
