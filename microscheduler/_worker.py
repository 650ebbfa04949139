"""Workers: coroutines that take tasks from their lanes and run them one at a time."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._exceptions import StateRestoreError
from ._interrupt import InterruptContext
from ._lanes import RUNNING, Lane, WorkerGroup
from ._priority import WorkerType
from ._stats import clock

if TYPE_CHECKING:
    from ._executor import TaskExecutor
    from ._task import TaskHandle

__all__ = ("Worker", "sync_computes_running")

_NOT_RUN: Any = object()  # a sync compute's thread found its run interrupted before it began
_sync_lock = threading.Lock()
_sync_running = 0


def sync_computes_running() -> int:
    """How many sync computes are executing in worker threads right now (all executors)."""
    return _sync_running


def _call_sync(compute: Any, resource: object, state: object, ctx: InterruptContext) -> Any:
    """Run a sync compute in its worker thread, unless its run was interrupted before the
    thread got to it (a caller that gave up meanwhile must not see its compute start)."""
    global _sync_running
    if ctx._reason is not None:
        return _NOT_RUN
    with _sync_lock:
        _sync_running += 1
    try:
        return compute(resource, state, ctx)
    finally:
        with _sync_lock:
            _sync_running -= 1


class Worker:
    """One worker coroutine: serves a fixed list of lanes, most urgent first.

    Invariants of :meth:`run`:
        * A worker runs at most one compute at a time; ``current`` is the handle it runs.
        * It always takes from the most urgent non-empty lane it serves (strict priority),
          and a gated background worker takes nothing while the supervisor holds it.
        * A run ended by preemption, caller cancel, timeout or shutdown — a sync compute's
          thread included — has fully finished before the worker takes anything else, so
          a task never runs twice at once and preempting work never overlaps its victim.
        * A compute's exception never escapes the worker; only a cancellation of the
          worker task itself does, and then the handle it held still gets an outcome.
        * The worker returns once the executor is cut off (shutdown) and its lanes hold
          nothing more for it.
    """

    __slots__ = (
        "_executor",
        "_gated",
        "current",
        "group",
        "lanes",
        "resource",
        "worker_id",
        "worker_type",
    )

    def __init__(
        self,
        executor: TaskExecutor,
        worker_id: int,
        worker_type: WorkerType,
        lanes: Sequence[Lane],
        group: WorkerGroup,
        *,
        gated: bool,
    ) -> None:
        self._executor = executor
        self.worker_id = worker_id
        self.worker_type = worker_type
        self.lanes = tuple(lanes)
        self.group = group
        self._gated = gated
        self.resource: object = None
        self.current: TaskHandle[Any] | None = None

    def __repr__(self) -> str:
        doing = f"running {self.current.name!r}" if self.current is not None else "idle"
        return f"<Worker {self.worker_id} {self.worker_type} {doing}>"

    def _take(self) -> TaskHandle[Any] | None:
        if self._gated and self._executor._supervisor.holds_background():
            return None
        for lane in self.lanes:
            if lane.heap:
                handle = lane.pop()
                if handle is not None:
                    return handle
        return None

    async def run(self) -> None:
        """Take and run tasks until the executor shuts down.

        Runs happen inside a cancel scope that the worker keeps open across runs, so an
        uninterrupted run costs no scope of its own. Interrupting a run cancels that scope;
        the worker then leaves it (the scope swallows only its own cancellation) and opens
        a fresh one before it takes anything else.
        """
        while not await self._serve_in_one_scope():
            pass

    async def _serve_in_one_scope(self) -> bool:
        """Serve tasks until a run is interrupted (False) or the executor is cut off (True)."""
        executor = self._executor
        with anyio.CancelScope() as scope:
            while True:
                handle = self._take()
                if handle is None:
                    if executor._cut:
                        return True
                    await self.group.wait()
                    continue
                if handle._future.done():
                    # Its caller's task was cancelled (which cancels the future at once)
                    # but has not run yet to withdraw it: retire it here, never run.
                    executor._retire(handle, "cancelled")
                    continue
                await self._run_one(handle, scope)
                if scope.cancel_called:
                    # The run was interrupted but ended before the cancellation reached
                    # it: this scope is spent, and the next run needs a fresh one.
                    return False
        return False

    async def _run_one(self, handle: TaskHandle[Any], scope: anyio.CancelScope) -> None:
        executor = self._executor
        loop = executor._loop
        task = handle._task
        handle._attempt += 1
        ctx = InterruptContext(handle, handle._attempt)
        handle._ctx = ctx
        handle._scope = scope
        handle._phase = RUNNING
        self.current = handle
        executor._counters.running += 1
        started = clock()
        executor._queue_waits.lanes[handle._priority].append(started - handle._queued_at)
        if executor._events is not None:
            executor._events.run_started(handle, self.worker_id)
        if executor._debug:
            executor._log.debug(
                "task_started",
                task=task.name,
                priority=str(handle._priority),
                worker_id=self.worker_id,
                worker_type=str(self.worker_type),
                attempt=handle._attempt,
                wait_ms=round((started - handle._queued_at) * 1000.0, 3),
            )
        ok = self_cancelled = abandoned = False
        result: Any = None
        error: BaseException | None = None
        try:
            if handle._snapshot is not None:
                try:
                    handle._state.restore(handle._snapshot)
                except Exception as exc:
                    error = StateRestoreError(f"failed to restore state: {exc}")
                    error.__cause__ = exc
                    return
            if task.timeout is not None:
                ctx._add_timer(
                    loop.call_later(task.timeout, executor._interrupt, handle, "timeout")
                )
            if task.is_async:
                result = await task.compute(self.resource, handle._state, ctx)
            else:
                result = await anyio.to_thread.run_sync(
                    _call_sync,
                    task.compute,
                    self.resource,
                    handle._state,
                    ctx,
                    limiter=executor._limiter,
                )
                if result is _NOT_RUN:
                    return  # ended by its interrupt before it began: decided by the reason
                if inspect.isawaitable(result):
                    result = await result
            ok = True
        except asyncio.CancelledError:
            if scope.cancel_called:
                raise  # the interrupt: finished below, swallowed by the worker's scope
            if _cancelling():
                # The worker task itself is being cancelled (the loop is closing): the run
                # is over and its caller must still get an outcome.
                abandoned = True
                raise
            # The compute raised CancelledError of its own accord (e.g. it awaited
            # something that was cancelled); its caller sees a cancellation.
            self_cancelled = True
        except Exception as exc:
            error = exc
        except BaseException:  # KeyboardInterrupt, SystemExit: let them stop the loop
            abandoned = True
            raise
        finally:
            ctx._end()
            self._release(handle)
            if abandoned:
                executor._abandon_run(handle)
            else:
                executor._finish_run(self, handle, ctx, ok, result, error, self_cancelled, started)

    def _release(self, handle: TaskHandle[Any]) -> None:
        handle._scope = None
        self.current = None
        self._executor._counters.running -= 1


def _cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0
