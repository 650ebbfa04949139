"""Running a compute in its caller's context, without a task of its own."""

from __future__ import annotations

import contextvars
from collections.abc import Generator
from typing import Any

__all__ = ("InContext",)

_NONE: Any = object()


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
                        thrown, error = error, None
                        yielded = run(steps.throw, thrown)
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
