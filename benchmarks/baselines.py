"""The hand-written baselines of docs/design.md (performance), kept deliberately small.

Every figure the suite reports is a ratio against one of these, measured in the same
process and the same event loop, so they must stay honest: each does the least an
experienced asyncio programmer would write to get the same behaviour, and nothing that
would make it artificially slow (no logging, no validation) or artificially fast (no
skipping of the future a caller awaits).

- (a) :class:`PriorityPool` — K worker coroutines pulling
  ``(priority, seq, coroutine function, future)`` from one ``asyncio.PriorityQueue``.
  ``execute`` is the one-caller-task-per-job mode; ``submit_nowait`` plus awaiting the
  returned futures is the bulk mode.
- (b) :class:`PreemptingPool` — the same pool, where a submit more urgent than
  ``BACKGROUND`` that finds no idle worker cancels one running background job and
  requeues it.
- (c) :func:`bare_create_task` — ``asyncio.create_task`` + ``await``, no pool at all: the
  floor under any scheduler.
- peer: :func:`aiojobs_execute` — ``aiojobs.Scheduler(limit=K)`` running the same jobs.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Self

import aiojobs

#: Lane numbers, the same values as ``microscheduler.Priority`` (smaller is more urgent).
UI: Final = 0
LAST_EFFORT: Final = 1
BACKGROUND: Final = 2

JobFn = Callable[[], Awaitable[Any]]
Entry = tuple[int, int, JobFn, "asyncio.Future[Any]"]


class PriorityPool:
    """Baseline (a): K workers pulling ``(priority, seq, fn, future)`` from a PriorityQueue.

    The sequence number keeps FIFO order within a priority and means a function or a
    future is never compared. A caller that gives up cancels its future; a worker skips
    entries whose future is already done. Shutdown does not drain: the benchmarks await
    every job before they leave the ``async with`` block.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._size = workers
        self._queue: asyncio.PriorityQueue[Entry] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._workers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._work(i)) for i in range(self._size)]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    def submit_nowait(self, fn: JobFn, priority: int = BACKGROUND) -> asyncio.Future[Any]:
        """Queue ``fn`` and return the future its result will be set on."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((priority, next(self._seq), fn, future))
        return future

    async def execute(self, fn: JobFn, priority: int = BACKGROUND) -> Any:
        """Queue ``fn`` and wait for its result (one caller task per job)."""
        return await self.submit_nowait(fn, priority)

    async def _work(self, worker_id: int) -> None:
        queue = self._queue
        while True:
            entry = await queue.get()
            future = entry[3]
            if future.done():
                continue
            await self._run(worker_id, entry)

    async def _run(self, worker_id: int, entry: Entry) -> None:
        _, _, fn, future = entry
        try:
            result = await fn()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)


class PreemptingPool(PriorityPool):
    """Baseline (b): :class:`PriorityPool` where urgent work preempts background jobs.

    A background job runs in a child task, so it can be cancelled without cancelling the
    worker. A submit more urgent than ``BACKGROUND`` that finds no idle worker cancels one
    running background job; that job's worker sees the child cancelled (while it was not
    cancelled itself), requeues the entry under its original sequence number (ahead of
    later background work) and takes the next entry, which is the urgent one.
    """

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._idle = 0
        self._running_bg: dict[int, asyncio.Task[Any]] = {}
        self.preemptions = 0

    def submit_nowait(self, fn: JobFn, priority: int = BACKGROUND) -> asyncio.Future[Any]:
        future = super().submit_nowait(fn, priority)
        if priority < BACKGROUND and self._idle == 0:
            for child in self._running_bg.values():
                if not child.done() and not child.cancelling():
                    child.cancel()
                    self.preemptions += 1
                    break
        return future

    async def _work(self, worker_id: int) -> None:
        queue = self._queue
        while True:
            self._idle += 1
            try:
                entry = await queue.get()
            finally:
                self._idle -= 1
            if entry[3].done():
                continue
            if entry[0] < BACKGROUND:
                await self._run(worker_id, entry)
            else:
                await self._run_preemptible(worker_id, entry)

    async def _run_preemptible(self, worker_id: int, entry: Entry) -> None:
        _, _, fn, future = entry
        child: asyncio.Task[Any] = asyncio.get_running_loop().create_task(_call(fn))
        self._running_bg[worker_id] = child
        try:
            await child
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                child.cancel()
                future.cancel()
                raise
            # Only the child was cancelled: that is a preemption, not a shutdown.
            if not future.done():
                self._queue.put_nowait(entry)
            return
        except Exception:
            pass  # delivered through the future below, with the child's traceback
        finally:
            del self._running_bg[worker_id]
        if future.done():
            return
        if (exc := child.exception()) is not None:
            future.set_exception(exc)
        else:
            future.set_result(child.result())


async def _call(fn: JobFn) -> Any:
    return await fn()


async def bare_create_task(fn: JobFn) -> Any:
    """Baseline (c): run ``fn`` in a task of its own and await it, without any pool."""
    return await asyncio.get_running_loop().create_task(_call(fn))


async def aiojobs_execute(scheduler: aiojobs.Scheduler, fn: JobFn) -> Any:
    """Peer: spawn ``fn`` on an ``aiojobs.Scheduler`` and wait for its result."""
    job = await scheduler.spawn(_call(fn))
    return await job.wait()


def aiojobs_scheduler(workers: int) -> aiojobs.Scheduler:
    """An ``aiojobs.Scheduler`` running at most ``workers`` jobs, with no pending limit."""
    return aiojobs.Scheduler(limit=workers, pending_limit=0, wait_timeout=None)
