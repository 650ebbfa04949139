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

    _within: asyncio.Timeout | None
    _deadline: asyncio.TimerHandle | None

    def done(self) -> bool:
        """True once this caller has its outcome."""
        ...


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
        * The attached handles (:meth:`attached`) are those whose callers still wait: the
          one in ``handle`` until a second caller joins by key, then all of them in
          ``joined`` (and ``handle`` is None). The execution is withdrawn or cancelled when
          the last one detaches. (One caller, the common case, costs no list.)
        * ``snapshot`` is the latest snapshot (``saved_state``, a ``save_state`` of an
          earlier run, or a stored one loaded for a keyed task's first run).
    """

    __slots__ = (
        "attempt",
        "context",
        "ctx",
        "entry",
        "gave_up",
        "handle",
        "id",
        "joined",
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
        self.handle: AttachedHandle | None = None  # the only attached handle, if any
        self.joined: list[AttachedHandle] | None = None  # all of them, once one joined
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

    def attached(self) -> list[AttachedHandle]:
        """The handles whose callers still wait for this execution's outcome."""
        if self.joined is not None:
            return self.joined
        return [self.handle] if self.handle is not None else []

    def attach(self, handle: AttachedHandle) -> None:
        """Attach one more caller's handle (the first, or one joining by key)."""
        if self.joined is not None:
            self.joined.append(handle)
        elif self.handle is None:
            self.handle = handle
        else:
            self.joined = [self.handle, handle]
            self.handle = None

    def detach(self, handle: AttachedHandle) -> bool:
        """Detach ``handle``; False if it was not attached."""
        if self.handle is handle:
            self.handle = None
            return True
        joined = self.joined
        if joined is None or handle not in joined:
            return False
        joined.remove(handle)
        return True

    def release(self) -> None:
        """Let go of every handle (the execution has ended)."""
        self.handle = None
        self.joined = None

    def abandoned(self) -> bool:
        """True when every attached caller already has its outcome (it gave up, and its
        handle has not yet detached), or none is attached."""
        handle = self.handle
        if handle is not None:
            return handle.done()
        return all(handle.done() for handle in self.joined or ())

    def __repr__(self) -> str:
        return (
            f"<Execution {self.task.name!r} {self.priority} {PHASE_NAMES[self.phase]} "
            f"attempt={self.attempt} handles={len(self.attached())}>"
        )
