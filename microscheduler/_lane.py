"""Priority lanes: ``asyncio.PriorityQueue`` subclasses holding queued executions.

A lane is an ``asyncio.PriorityQueue`` built on the queue's own extension points
(``_init``, ``_put``, ``_get``, ``maxsize``). Its items are ``(rank, sequence,
execution)`` tuples, so an execution is never compared and first-in-first-out holds within
a lane: new work has rank 0 and an increasing sequence; a preempted execution going back
for its rerun has rank -1 and a *decreasing* (negative) sequence, so reruns go ahead of
new work, the most recently preempted first.

Inside, the heap holds only the sequence numbers — plain ints, which order exactly as the
items do (reruns' are negative) — and a dict maps each live one to its execution. Ints
compare faster than tuples, and a queued execution costs no tuple the garbage collector
has to track.

What the stock queue does not give, and the lane adds:

* **Lazy deletion.** A caller that gives up withdraws its entry in O(1): the execution
  forgets its sequence number (``execution._entry``), the lane drops it from the live
  dict, counts it dead and frees its room at once, and ``_get`` skips it later. Dead
  entries are compacted away when they outnumber the live ones, so a storm of
  cancellations cannot grow a lane without bound.
* **Capacity counts live new entries only.** ``full()`` compares live new work with
  ``maxsize``; reruns never count against it and never wait for room (``put_rerun``).
* **Submitters wait in FIFO order and keep their place**, parked in a
  :class:`~microscheduler._parking.ParkingLot` of the lane's (the queue's own ``_putters``
  stay empty). A pop that frees room wakes exactly one waiting submitter (none when it
  frees no room); one that gives up leaves the lot at once, passing on a wake-up it can no
  longer use; a woken submitter that finds no room after all waits again at the head.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from ._execution import Execution
from ._parking import ParkingLot
from ._priority import Priority

__all__ = ("Lane",)

Entry = tuple[int, int, Execution]

_COMPACT_MIN_DEAD = 256


class Lane(asyncio.PriorityQueue[Entry]):
    """One priority lane: a bounded priority queue of executions with lazy deletion.

    A worker reads ``_new`` and ``_reruns`` (the live counts) directly on every take: a
    method call there costs the bulk benchmark row. Nothing else outside reads its fields.
    """

    _queue: list[int]  # sequence numbers (see the module docstring)

    def __init__(self, priority: Priority, maxsize: int) -> None:
        self.priority = priority
        self._capacity = maxsize  # maxsize, without the base class's property on each check
        self._room = ParkingLot(pass_on_lost=True)  # submitters waiting for room
        super().__init__(maxsize)

    # -- the queue's extension points ----------------------------------------------------

    def _init(self, maxsize: int) -> None:
        self._queue = []
        self._live: dict[int, Execution] = {}  # sequence number -> its queued execution
        self._new = 0  # live new entries: these count against maxsize
        self._reruns = 0  # live rerun entries: these never do
        self._dead = 0
        self._seq = itertools.count()
        self._rerun_seq = itertools.count(1)

    def _put(self, item: Entry) -> None:
        rank, seq, execution = item
        if rank:
            seq = -abs(seq)  # a rerun's sequence orders it ahead of all new work
            self._reruns += 1
        else:
            self._new += 1
        heapq.heappush(self._queue, seq)
        self._live[seq] = execution
        execution._entry = seq

    def _get(self) -> Entry:
        execution = self._pop()
        seq, execution._entry = execution._entry, None
        assert seq is not None
        return (-1 if seq < 0 else 0, seq, execution)

    def _pop(self) -> Execution:
        """Pop the first live execution, skipping dead entries; its ``_entry`` still
        holds the sequence number it was queued under."""
        queue = self._queue
        live = self._live
        while True:
            seq = heapq.heappop(queue)
            execution = live.pop(seq, None)
            if execution is not None:
                break
            self._dead -= 1
        if seq < 0:
            self._reruns -= 1
        else:
            self._new -= 1
            if self._room.waiters:  # a pop that frees room wakes one waiting submitter
                self._room.unpark_one()
        return execution

    def qsize(self) -> int:
        """Live entries, reruns included."""
        return self._new + self._reruns

    def empty(self) -> bool:
        """True when the lane holds no live entry."""
        return not (self._new + self._reruns)

    def full(self) -> bool:
        """True when new work has to wait for room (reruns never do)."""
        return 0 < self._capacity <= self._new

    # -- executor side -------------------------------------------------------------------

    def __len__(self) -> int:
        return self._new + self._reruns

    def put_new(self, execution: Execution) -> None:
        """Queue new work at the tail; the caller has checked :meth:`full`.

        It goes straight to the heap: ``put_nowait`` would check for room again and keep
        ``join()`` bookkeeping that lanes never use, on every submit.
        """
        seq = next(self._seq)
        heapq.heappush(self._queue, seq)
        self._live[seq] = execution
        execution._entry = seq
        self._new += 1

    def put_rerun(self, execution: Execution) -> None:
        """Queue a preempted execution ahead of new work and earlier-preempted ones."""
        self._put((-1, -next(self._rerun_seq), execution))

    def put_promoted(self, execution: Execution) -> None:
        """Queue an execution promoted from a less urgent lane at the tail, without
        waiting for room."""
        self._put((0, next(self._seq), execution))

    def take(self) -> Execution | None:
        """Take the first live execution, or None if the lane is empty.

        ``get_nowait()`` without the tuple and with its checks and hooks called directly:
        this is every worker's step.
        """
        if not (self._new + self._reruns):
            return None
        execution = self._pop()
        execution._entry = None
        return execution

    def withdraw(self, execution: Execution) -> None:
        """Remove ``execution``'s entry in O(1) (lazy deletion); it must hold one."""
        seq = execution._entry
        assert seq is not None
        execution._entry = None
        del self._live[seq]
        if seq < 0:
            self._reruns -= 1
        else:
            self._new -= 1
            if self._room.waiters:
                self._room.unpark_one()
        self._dead += 1
        if self._dead >= _COMPACT_MIN_DEAD and self._dead > len(self._queue) // 2:
            self._queue = list(self._live)
            heapq.heapify(self._queue)
            self._dead = 0

    def drain(self) -> list[Execution]:
        """Remove and return every live execution, in lane order."""
        executions = []
        while (execution := self.take()) is not None:
            executions.append(execution)
        return executions

    @property
    def waiting_submitters(self) -> int:
        """Submitters waiting for room in this lane."""
        return len(self._room)

    async def wait_for_room(self, *, at_head: bool = False) -> None:
        """Wait until new work may fit, or until :meth:`wake_all_submitters` (shutdown).

        The caller must check :meth:`full` again: a wake-up promises room only at that
        moment. ``at_head`` keeps the place of a submitter woken for room it did not get.
        """
        await self._room.park(at_head=at_head)

    def wake_all_submitters(self) -> None:
        """Wake every submitter waiting for room (used at shutdown)."""
        self._room.unpark_all()
