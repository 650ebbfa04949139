"""Executor statistics: live counters and the frozen snapshot ``statistics()`` returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ._priority import Priority

__all__ = ("Counters", "ExecutorStatistics")


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

    def as_dict(self) -> dict[str, Any]:
        """Return the snapshot as JSON-ready data: every field by name, and ``queued`` keyed
        by lane name (``"UI"``, ``"LastEffort"``, ``"Background"``, as ``str(Priority)``)."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["queued"] = {str(priority): count for priority, count in self.queued.items()}
        return data


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
