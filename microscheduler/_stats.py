"""Executor statistics: live counters and the frozen snapshot ``statistics()`` returns."""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Mapping

from ._priority import Priority

__all__ = ("Counters", "ExecutorStatistics", "QueueWait", "QueueWaits", "clock")

#: The clock of queue waits and run times: asyncio's loop.time() reads the same clock but
#: costs three times more per call, and every task is timed twice.
clock = time.monotonic

#: How many recent queue waits each lane keeps for its percentiles.
QUEUE_WAIT_WINDOW = 1024


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QueueWait:
    """How long the latest runs of one lane waited in the queue before they started.

    Taken over a sliding window of the last runs started from the lane (at most
    1,024), so it describes the recent past and holds bounded memory. A preempted task's
    rerun counts from the moment it went back to the lane.

    Attributes:
        p50: Median wait in seconds, or None before the lane's first run.
        p99: 99th-percentile wait in seconds, or None before the lane's first run.
        samples: How many waits the percentiles are taken over.
    """

    __module__ = "microscheduler"

    p50: float | None
    p99: float | None
    samples: int


_NO_WAITS = QueueWait(p50=None, p99=None, samples=0)


def _nearest_rank(ordered: list[float], percentile: int) -> float:
    return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)]


class QueueWaits:
    """The recent queue waits of each lane (a bounded deque per lane)."""

    __slots__ = ("lanes",)

    def __init__(self) -> None:
        self.lanes = tuple(collections.deque[float](maxlen=QUEUE_WAIT_WINDOW) for _ in Priority)

    def snapshot(self) -> Mapping[Priority, QueueWait]:
        """Percentiles of each lane's window (nearest-rank)."""
        waits = {}
        for priority, window in zip(Priority, self.lanes, strict=True):
            if not window:
                waits[priority] = _NO_WAITS
                continue
            ordered = sorted(window)
            waits[priority] = QueueWait(
                p50=_nearest_rank(ordered, 50),
                p99=_nearest_rank(ordered, 99),
                samples=len(ordered),
            )
        return waits


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorStatistics:
    """A snapshot of what an executor has done and holds.

    Every admitted execution is, at any moment, in exactly one of: queued (preempted ones
    waiting for their rerun included), running, completed, failed, cancelled or timed out,
    so ``submitted == sum(queued.values()) + running + completed + failed + cancelled +
    timed_out``.

    Attributes:
        queued: Executions waiting in each lane (always all three keys).
        running: Runs in progress (including runs winding down after an interrupt).
        completed: Executions that returned a result.
        failed: Executions that ended with an exception other than a timeout: the task's
            own, ``StateRestoreError`` or ``TaskInterruptedError``.
        cancelled: Executions cancelled by their caller or by a shutdown.
        timed_out: Executions ended by ``Task.timeout`` or the caller's ``timeout``.
        preempted: Preemptions so far (a run interrupted so urgent work could go first).
        rescheduled: Preempted runs queued again for a rerun.
        submitted: Executions admitted so far.
        workers: The number of workers.
        queue_wait: For each lane (always all three keys), the median and 99th
            percentile of how long its latest runs waited in the queue.
    """

    __module__ = "microscheduler"

    queued: Mapping[Priority, int]
    running: int
    completed: int
    failed: int
    cancelled: int
    timed_out: int
    preempted: int
    rescheduled: int
    submitted: int
    workers: int
    queue_wait: Mapping[Priority, QueueWait]


class Counters:
    """The executor's mutable counters (one attribute increment per event)."""

    __slots__ = (
        "cancelled",
        "completed",
        "failed",
        "preempted",
        "rescheduled",
        "running",
        "submitted",
        "timed_out",
    )

    def __init__(self) -> None:
        self.submitted = 0
        self.running = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.timed_out = 0
        self.preempted = 0
        self.rescheduled = 0
