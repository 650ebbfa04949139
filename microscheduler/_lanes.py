"""Priority lanes: bounded heaps of queued tasks, and the idle-worker wake-up.

Each lane is a binary heap of ``(rank, sequence, handle)`` entries, so a handle is never
compared and first-in-first-out holds within a lane. New work has rank 0 and an increasing
sequence; a preempted task going back for its rerun has rank -1 and a *decreasing* sequence,
so reruns go ahead of new work, most recently preempted first.

Why not ``asyncio.PriorityQueue`` itself: a caller that gives up must withdraw its queued
task in O(1) and free its room at once, and a preempted task must always find room for its
rerun. Both need a lane that counts its live entries itself. A withdrawn task stays in the
heap as a dead entry that ``pop`` skips; dead entries are compacted away when they outnumber
the live ones, so a storm of cancellations cannot grow a lane without bound.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
from typing import TYPE_CHECKING, Any

from ._priority import Priority

if TYPE_CHECKING:
    from ._task import TaskHandle

__all__ = ("Lane", "WorkerGroup")

# Phases of a handle (kept on ``TaskHandle._phase``); a lane owns a handle in the first two.
QUEUED = 0
PREEMPTED = 1
RUNNING = 2
DONE = 3

_COMPACT_MIN_DEAD = 256


class Lane:
    """One priority lane with a capacity for new work and waiters for room."""

    __slots__ = (
        "_dead",
        "_putters",
        "_rerun_seq",
        "_seq",
        "capacity",
        "heap",
        "new",
        "priority",
        "reruns",
    )

    def __init__(self, priority: Priority, capacity: int) -> None:
        self.priority = priority
        self.capacity = capacity
        self.new = 0  # live new entries: these count against capacity
        self.reruns = 0  # live rerun entries: these never do
        self.heap: list[tuple[int, int, TaskHandle[Any]]] = []
        self._seq = itertools.count()
        self._rerun_seq = itertools.count(1)
        self._dead = 0
        self._putters: collections.deque[asyncio.Future[None]] = collections.deque()

    def __len__(self) -> int:
        return self.new + self.reruns

    @property
    def waiting_putters(self) -> int:
        """Callers waiting for room (a waiter that gave up stays in the deque, done)."""
        return sum(not waiter.done() for waiter in self._putters)

    def full(self) -> bool:
        """True when new work has to wait for room."""
        return 0 < self.capacity <= self.new

    def push(self, handle: TaskHandle[Any]) -> None:
        """Queue new work at the tail of the lane."""
        heapq.heappush(self.heap, (0, next(self._seq), handle))
        self.new += 1

    def push_rerun(self, handle: TaskHandle[Any]) -> None:
        """Queue a preempted task ahead of all new work and of earlier-preempted tasks."""
        heapq.heappush(self.heap, (-1, -next(self._rerun_seq), handle))
        self.reruns += 1

    def pop(self) -> TaskHandle[Any] | None:
        """Take the first live entry, or None if the lane is empty."""
        heap = self.heap
        while heap:
            rank, _, handle = heapq.heappop(heap)
            if handle._phase > PREEMPTED:
                self._dead -= 1
                continue
            if rank:
                self.reruns -= 1
            else:
                self.new -= 1
                if self._putters:
                    self._wake_putter()
            return handle
        return None

    def discard(self, *, rerun: bool) -> None:
        """Account for a withdrawn entry; its handle's phase must already be ``DONE``."""
        if rerun:
            self.reruns -= 1
        else:
            self.new -= 1
            self._wake_putter()
        self._dead += 1
        if self._dead >= _COMPACT_MIN_DEAD and self._dead > len(self.heap) // 2:
            self.heap = [entry for entry in self.heap if entry[2]._phase <= PREEMPTED]
            heapq.heapify(self.heap)
            self._dead = 0

    def drain(self) -> list[TaskHandle[Any]]:
        """Remove and return every live entry, in lane order."""
        handles = []
        while (handle := self.pop()) is not None:
            handles.append(handle)
        return handles

    async def wait_for_room(self) -> None:
        """Wait until new work fits, or until ``wake_all_putters`` (shutdown) is called."""
        waiter = asyncio.get_running_loop().create_future()
        self._putters.append(waiter)
        try:
            await waiter
        except BaseException:
            waiter.cancel()
            # Pass a wake-up this waiter received but can no longer use to the next one.
            if not self.full():
                self._wake_putter()
            raise

    def _wake_putter(self) -> None:
        putters = self._putters
        while putters:
            waiter = putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_all_putters(self) -> None:
        """Wake every task waiting for room (used at shutdown)."""
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)


class WorkerGroup:
    """The idle workers that serve a set of lanes, waiting to be woken for new work.

    A wake-up may find nothing to do (another worker took the work first): a woken worker
    always re-checks its lanes. A worker that is busy when work arrives finds it when it
    next checks, so no wake-up is ever needed for it.
    """

    __slots__ = ("_idle",)

    def __init__(self) -> None:
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def idle(self) -> int:
        """Workers waiting to be woken (a woken or cancelled waiter is done)."""
        return sum(not waiter.done() for waiter in self._idle)

    async def wait(self) -> None:
        """Sleep until :meth:`wake_one` or :meth:`wake_all` is called."""
        waiter = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            await waiter
        finally:
            waiter.cancel()

    def wake_one(self) -> None:
        """Wake one idle worker, if any."""
        idle = self._idle
        while idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_all(self) -> None:
        """Wake every idle worker."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
