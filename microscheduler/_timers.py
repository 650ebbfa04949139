"""Timers: the supervisor task and its heap of deadlines.

Every time-based policy of the executor (the end of an interrupt grace, the
``task_interrupt_ignored`` warning, aging, the end of a ``min_background_slice`` or of a
``background_quiet_period``) is a deadline here. They wait in one heap; one task,
``microscheduler-supervisor``, sleeps in a parking lot until the earliest is due and runs
what is due, so a deadline costs a heap push, not a timer of its own, and every policy
action runs on that task (anyio's cancel messages name it).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

from ._parking import ParkingLot
from ._runtime import Runtime

__all__ = ("Timers",)

_Timer = tuple[float, int, Callable[..., None], tuple[Any, ...]]


class Timers:
    """A heap of deadlines run by the supervisor task, between ``start`` and ``stop``.

    Invariants:
        * At most one loop alarm is pending: at the earliest deadline in the heap.
        * An action scheduled by a due action runs on a later pass, never the same one.
        * An action that raises is logged (``supervisor_action_failed``) and never ends
          the supervisor task.
    """

    def __init__(self) -> None:
        self._heap: list[_Timer] = []
        self._seq = itertools.count()
        self._alarm: asyncio.TimerHandle | None = None
        self._alarm_when = math.inf
        self._wakeup = ParkingLot()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log: Any = None

    def start(self, runtime: Runtime) -> None:
        """Start the supervisor task on the executor's loop."""
        self._loop = loop = runtime.loop
        self._log = runtime.log
        self._task = loop.create_task(self._serve(), name="microscheduler-supervisor")

    async def stop(self) -> None:
        """Stop the supervisor task and drop every pending deadline."""
        self._stopping = True
        self._wakeup.unpark_all()
        if self._task is not None:
            await self._task
            self._task = None
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None
        self._heap.clear()

    def now(self) -> float:
        """The loop's clock (0.0 before start)."""
        return self._loop.time() if self._loop is not None else 0.0

    def schedule(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        """Run ``action(*args)`` on the supervisor task ``delay`` seconds from now."""
        loop = self._loop
        assert loop is not None
        when = loop.time() + delay
        heapq.heappush(self._heap, (when, next(self._seq), action, args))
        if when < self._alarm_when:
            self._set_alarm(when)

    async def _serve(self) -> None:
        """Sleep until the earliest deadline, run what is due, repeat until stopped."""
        while not self._stopping:
            self._fire_due()  # (first: an alarm that rang before this task first ran)
            await self._wakeup.park()

    def _set_alarm(self, when: float) -> None:
        assert self._loop is not None
        if self._alarm is not None:
            self._alarm.cancel()
        self._alarm_when = when
        self._alarm = self._loop.call_at(when, self._ring)

    def _ring(self) -> None:
        self._alarm = None
        self._alarm_when = math.inf
        self._wakeup.unpark_all()

    def _fire_due(self) -> None:
        heap = self._heap
        now = self.now() + 1e-6
        # What a due action schedules waits for a later pass, even when it is due at once
        # (a clock of millisecond steps, as uvloop's, gives it the same time): the loop's
        # ready work runs in between, as it would after any other timer.
        first_new = next(self._seq)
        while heap and heap[0][0] <= now and heap[0][1] < first_new:
            _, _, action, args = heapq.heappop(heap)
            try:
                action(*args)
            except Exception as exc:  # a policy must never kill the supervisor
                self._log.error("supervisor_action_failed", action=repr(action), exc_info=exc)
        if heap and heap[0][0] < self._alarm_when:
            self._set_alarm(heap[0][0])
