"""Executions: one admitted piece of work, shared by every handle attached to it.

An execution moves through four phases::

    QUEUED ──► RUNNING ──► DONE
       ▲          │
       │          ▼
       └───── PREEMPTED        (waiting, with its latest snapshot, to be rerun)

A lane owns an execution while it is QUEUED or PREEMPTED; a worker owns it while it is
RUNNING; DONE is final. Callers see an execution through :class:`TaskHandle` objects: the
submit that created it, plus one per submit that joined it by key.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from typing import TYPE_CHECKING, Any, Protocol

from ._priority import Priority
from ._snapshots import SnapshotStore
from ._state import TaskState
from ._task import Task

if TYPE_CHECKING:
    from ._interrupt import InterruptContext

__all__ = ("DONE", "PHASE_NAMES", "PREEMPTED", "QUEUED", "RUNNING", "Execution", "TaskStatus")

# Phases are plain ints (compared on every pop); PHASE_NAMES names them for repr().
QUEUED = 0
PREEMPTED = 1
RUNNING = 2
DONE = 3
PHASE_NAMES = ("queued", "preempted", "running", "done")


class AttachedHandle(Protocol):
    """What an execution knows of a caller's handle attached to it."""

    _future: asyncio.Future[Any]
    _within: asyncio.Timeout | None
    _deadline: asyncio.TimerHandle | None


class TaskStatus(enum.Enum):
    """Where one execution of a task stands, as one caller sees it."""

    __module__ = "microscheduler"

    QUEUED = "queued"
    RUNNING = "running"
    PREEMPTED = "preempted"
    """Interrupted by urgent work and waiting, with its latest snapshot, to be rerun."""
    COMPLETED = "completed"
    FAILED = "failed"
    """Ended with an exception: the task's own, ``TimeoutError``, ``StateRestoreError``
    or ``TaskInterruptedError``."""
    CANCELLED = "cancelled"
    """Cancelled by its caller, or by a shutdown (``ExecutorShutdownError``)."""


PHASE_STATUS = (TaskStatus.QUEUED, TaskStatus.PREEMPTED, TaskStatus.RUNNING)


class Execution:
    """One admitted execution of a task (see the module docstring for its phases).

    Invariants:
        * ``entry`` is the lane entry that currently represents it while QUEUED or
          PREEMPTED, else None; any other entry for it in a lane is dead.
        * ``handles`` holds the attached handles whose callers still wait; the execution
          is withdrawn or cancelled when the last one detaches.
        * ``snapshot`` is the latest snapshot (``saved_state``, a ``save_state`` of an
          earlier run, or a stored one loaded for a keyed task's first run).
    """

    __slots__ = (
        "attempt",
        "context",
        "ctx",
        "entry",
        "gave_up",
        "handles",
        "id",
        "key",
        "loaded",
        "phase",
        "preemptions",
        "priority",
        "queued_at",
        "scope",
        "snapshot",
        "state",
        "store",
        "task",
        "worker_id",
    )

    def __init__(
        self,
        task: Task[Any],
        priority: Priority,
        state: TaskState,
        ident: int,
        queued_at: float,
        store: SnapshotStore | None,
    ) -> None:
        self.task = task
        self.key = task.key
        self.priority = priority
        self.state = state
        self.id = ident
        self.queued_at = queued_at  # time.perf_counter() when it last entered a lane
        self.store = store  # only for keyed tasks
        self.phase = QUEUED
        self.snapshot = task.saved_state
        self.loaded = task.saved_state is not None or store is None
        self.attempt = 0
        self.preemptions = 0
        self.worker_id: int | None = None  # the worker of the current or last run
        self.ctx: InterruptContext | None = None
        self.scope: Any = None  # the running attempt's anyio.CancelScope
        self.entry: tuple[int, int, Execution] | None = None
        self.handles: list[AttachedHandle] = []
        self.gave_up: str | None = None  # how the last attached caller left: cancel/timeout
        # Computes run in a copy of the submitting caller's context, as create_task does.
        self.context = contextvars.copy_context()

    @property
    def name(self) -> str:
        """The task's name."""
        return self.task.name

    def keep_snapshot(self, data: bytes) -> None:
        """Keep ``data`` as the latest snapshot (called by the run's context)."""
        self.snapshot = data

    async def persist_snapshot(self, data: bytes) -> None:
        """Write ``data`` to the snapshot store (keyed tasks only)."""
        if self.store is not None and self.key is not None:
            await self.store.save(self.key, data)

    def abandoned(self) -> bool:
        """True when every attached caller already has its outcome (it gave up, and its
        handle has not yet detached)."""
        handles = self.handles
        if len(handles) == 1:
            return handles[0]._future.done()
        return all(handle._future.done() for handle in handles)

    def __repr__(self) -> str:
        return (
            f"<Execution {self.task.name!r} {self.priority} {PHASE_NAMES[self.phase]} "
            f"attempt={self.attempt} handles={len(self.handles)}>"
        )
