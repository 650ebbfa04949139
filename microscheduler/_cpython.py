"""Every use of a CPython (or anyio) private name in the package, in one place.

The asyncio and multiprocessing names were checked on CPython 3.11.7, 3.12.1 and 3.13.0,
and anyio's cancel message on anyio 4.16; ``tests/test_cpython.py`` fails if one of them
changes shape.
Elsewhere the package uses public API only, with one documented exception:
:class:`~microscheduler._lane.Lane` overrides the ``asyncio.Queue`` extension hooks
``_init``, ``_put``, ``_get`` and keeps its heap in ``_queue``, as the queue's own
``PriorityQueue`` and ``LifoQueue`` do (the design card asks for lanes built on them).
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import contextlib
import multiprocessing.forkserver
import operator
import os
from collections.abc import Callable
from typing import Any

__all__ = (
    "cancel_unattributed",
    "forget_unretrieved",
    "future_unretrieved",
    "leave_forkserver",
    "running_loop_or_none",
)

#: The running loop, or None: ``asyncio._get_running_loop`` (exported by
#: ``asyncio.events``), which unlike ``get_running_loop()`` does not raise. Admission asks
#: it on every call to refuse calls from another loop.
running_loop_or_none = asyncio._get_running_loop

_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task
_current_task = asyncio.current_task


#: ``future_unretrieved(future)``: True if ``future`` failed and nobody retrieved its
#: exception (its ``_log_traceback``). A handle logs such a failure itself when it is
#: collected (``task_failed_unobserved``). An attrgetter, not a function: it runs in every
#: handle's ``__del__`` (benchmark rows: bulk, overhead).
future_unretrieved: Callable[[asyncio.Future[Any]], bool] = operator.attrgetter("_log_traceback")


def forget_unretrieved(future: asyncio.Future[Any]) -> None:
    """Mark ``future``'s exception as retrieved, so that asyncio will not report it."""
    future._log_traceback = False


def cancel_unattributed(scope: Any, loop: asyncio.AbstractEventLoop, host: object) -> None:
    """Cancel an anyio ``scope`` without anyio formatting the current task into its reason.

    anyio's ``CancelScope.cancel()`` appends ``repr(current_task())`` to its cancel
    message; a task's repr formats its coroutine and frame, about 10 us, and that sat on
    the latency path of every preemption (benchmark row: preempt p50). Cancelling with
    no current task skips it; the message keeps the "Cancelled via cancel scope" prefix
    by which anyio recognises its own cancellation. When the current task is the scope's
    ``host`` (a compute preempting its own run) the scope is cancelled as it is, so that
    anyio defers its delivery to the host's next checkpoint as usual.
    """
    task = _current_task(loop)
    if task is None or task is host:
        scope.cancel()
        return
    _leave_task(loop, task)
    try:
        scope.cancel()
    finally:
        _enter_task(loop, task)


def leave_forkserver() -> bool:
    """In a forkserver's child, close its copy of the server's "alive" pipe and forget the
    server (``multiprocessing.forkserver``'s ``_forkserver``, ``_forkserver_alive_fd``,
    ``_forkserver_pid``, ``_forkserver_address``), so that the server exits when the
    executor's process dies; False in any other process (see ``_process_child``)."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is None or getattr(server, "_forkserver_pid", None) is not None:
        return False  # not a forkserver's child, or this process started the server itself
    with contextlib.suppress(OSError):
        os.close(fd)
    server._forkserver_alive_fd = None  # type: ignore[union-attr]
    server._forkserver_address = None  # type: ignore[union-attr]
    return True
