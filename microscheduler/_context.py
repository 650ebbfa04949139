"""Calling a compute: in its caller's context, on the loop or in a worker thread."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._interrupt import InterruptContext

__all__ = ("NOT_RUN", "InContext", "RaisedInThread", "call_sync", "sync_computes_running")

_NONE: Any = object()
NOT_RUN: Any = object()  # a sync compute's thread found its run interrupted before it began
_sync_lock = threading.Lock()
_sync_running = 0


def sync_computes_running() -> int:
    """How many sync computes are executing in worker threads right now (all executors)."""
    return _sync_running


class RaisedInThread:
    """A ``GeneratorExit`` a sync compute raised, carried back as a value.

    Delivered as the thread's exception, asyncio would throw it into the worker task, and
    a thrown ``GeneratorExit`` closes every frame of the task instead of reaching the
    worker's handler: the worker would end. Returned instead, it is raised again on the
    loop, where it propagates like any other exception.
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def call_sync(compute: Any, resource: object, state: object, ctx: InterruptContext) -> Any:
    """Run a sync compute in its worker thread, unless its run was interrupted before the
    thread got to it (a caller that gave up meanwhile must not see its compute start)."""
    global _sync_running
    if ctx._reason is not None:
        return NOT_RUN
    with _sync_lock:
        _sync_running += 1
    try:
        return compute(resource, state, ctx)
    except GeneratorExit as exc:
        return RaisedInThread(exc)
    finally:
        with _sync_lock:
            _sync_running -= 1


class InContext:
    """Await an awaitable while running each of its steps in ``context``.

    This is what ``create_task(coro, context=...)`` does for a whole task, without a task
    of its own: the compute sees its caller's context variables, and what it sets stays in
    its execution's context instead of leaking into the worker's next run.
    """

    __slots__ = ("_awaitable", "_context", "_first")

    def __init__(self, awaitable: Any, context: contextvars.Context, first: Any = _NONE) -> None:
        self._awaitable = awaitable
        self._context = context
        self._first = first  # what a coroutine's first step, already taken, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        first = self._first
        steps = self._awaitable if first is not _NONE else self._awaitable.__await__()
        run = self._context.run
        value: Any = None
        error: BaseException | None = None
        while True:
            if first is not _NONE:
                yielded, first = first, _NONE
            else:
                try:
                    if error is None:
                        yielded = run(steps.send, value)
                    else:
                        try:
                            yielded = run(steps.throw, error)
                        finally:
                            # The exception's traceback holds this frame: a frame that
                            # kept the exception would be a cycle left to the collector.
                            error = None
                except StopIteration as stop:
                    return stop.value
            try:
                value = yield yielded
            except GeneratorExit:
                run(steps.close)
                raise
            except BaseException as exc:  # a cancellation thrown in by the worker task
                error = exc
                value = None
