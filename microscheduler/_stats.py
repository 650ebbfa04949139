"""Executor statistics: live counters and the frozen snapshot ``statistics()`` returns."""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Mapping, Sequence, Sized
from typing import Any, Protocol

from ._priority import Priority

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


class _Lane(Sized, Protocol):
    priority: Priority

    @property
    def waiting_submitters(self) -> int: ...


__all__ = ("Counters", "ExecutorStatistics", "QueueWait", "QueueWaits")


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
        submitted: Executions admitted so far (joins are not new executions).
        workers: The number of workers.
        joined: Submits of a live key that attached to its execution instead.
        promoted: Executions moved to a more urgent lane (by a join, ``promote()`` or
            ``max_background_wait``).
        wasted_runs: Background runs preempted before their first checkpoint: their
            work is lost. Many of them mean thrash (see ``background_quiet_period`` and
            ``min_background_slice``). A paused process compute loses nothing and is
            not counted.
        queue_wait: For each lane (always all three keys), the median and 99th
            percentile of how long its recent runs waited in the queue (see
            :class:`QueueWait`).
        waiting_submitters: Callers waiting for room in a full lane, all lanes.
        idle_workers: Workers waiting for work.
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
    joined: int = 0
    promoted: int = 0
    wasted_runs: int = 0
    waiting_submitters: int = 0
    idle_workers: int = 0
    queue_wait: Mapping[Priority, QueueWait] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(Priority, _NO_WAITS)
    )

    def as_dict(self) -> dict[str, Any]:
        """Return the snapshot as JSON-ready data: every field by name, and ``queued`` keyed
        by lane name (``"UI"``, ``"LastEffort"``, ``"Background"``, as ``str(Priority)``)."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["queued"] = {str(priority): count for priority, count in self.queued.items()}
        data["queue_wait"] = {
            str(priority): dataclasses.asdict(wait) for priority, wait in self.queue_wait.items()
        }
        return data

    @classmethod
    def of(
        cls,
        counters: Counters,
        lanes: Sequence[_Lane],
        idle_groups: Sequence[Sized],
        workers: int,
        queue_waits: QueueWaits,
    ) -> ExecutorStatistics:
        """Build a snapshot from an executor's counters, lanes and idle-worker groups (a
        group shared by several lanes is counted once)."""
        c = counters
        groups = {id(group): group for group in idle_groups}.values()
        return cls(
            queued={lane.priority: len(lane) for lane in lanes},
            running=c.running,
            completed=c.completed,
            failed=c.failed,
            cancelled=c.cancelled,
            timed_out=c.timed_out,
            preempted=c.preempted,
            rescheduled=c.rescheduled,
            submitted=c.submitted,
            workers=workers,
            joined=c.joined,
            promoted=c.promoted,
            wasted_runs=c.wasted_runs,
            waiting_submitters=sum(lane.waiting_submitters for lane in lanes),
            idle_workers=sum(len(group) for group in groups),
            queue_wait=queue_waits.snapshot(),
        )


class Counters:
    """The executor's mutable counters (one attribute increment per event)."""

    __slots__ = (
        "cancelled",
        "completed",
        "failed",
        "joined",
        "preempted",
        "promoted",
        "rescheduled",
        "running",
        "submitted",
        "timed_out",
        "wasted_runs",
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
        self.joined = 0
        self.promoted = 0
        self.wasted_runs = 0

    def ends(self) -> dict[str, int]:
        """How executions ended so far, and how often runs were preempted and rerun."""
        return {
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "timed_out": self.timed_out,
            "preempted": self.preempted,
            "rescheduled": self.rescheduled,
        }
