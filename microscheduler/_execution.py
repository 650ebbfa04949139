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
    from typing_extensions import TypeVar

    from ._interrupt import InterruptContext

    # A bare ``Execution`` (the scheduler's view) is an ``Execution[Any]``; a handle is a
    # ``Future[T]`` of its task's result, so checkers infer ``await`` and ``gather``.
    T = TypeVar("T", default=Any)
else:
    from typing import TypeVar

    T = TypeVar("T")  # the default is for checkers only: 3.11's TypeVar takes none

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


class Execution(asyncio.Future[T]):
    """One admitted execution of a task (see the module docstring for its phases).

    The execution is itself the future of its first caller: the public
    :class:`TaskHandle` is this class with its caller-facing methods, so admitting work
    costs one object, not an execution plus a handle plus a future. ``task``, ``key``,
    ``priority``, ``attempt`` and ``snapshot`` are the attributes a handle documents; the
    rest is the scheduler's, underscored so that a handle shows callers only its API.

    Invariants:
        * ``_entry`` is the sequence number that currently represents it in its lane while
          QUEUED or PREEMPTED, else None; any other entry for it in a lane is dead.
        * The attached handles (:meth:`_attached`) are those whose callers still wait:
          the execution itself while ``_first_attached``, plus any that joined by key,
          in ``_joined``. The execution is withdrawn or cancelled when the last one
          detaches. (One caller, the common case, costs no list, and no handle refers to
          itself, so a finished execution is freed as soon as it is dropped.)
        * ``snapshot`` is the latest snapshot (``saved_state``, a ``save_state`` of an
          earlier run, or a stored one loaded for a keyed task's first run).
    """

    __slots__ = (
        "_context",
        "_ctx",
        "_deadline",
        "_entry",
        "_first_attached",
        "_gave_up",
        "_id",
        "_joined",
        "_loaded",
        "_owner",
        "_phase",
        "_preemptions",
        "_queued_at",
        "_scope",
        "_store",
        "_task_state",
        "_within",
        "_worker_id",
        "attempt",
        "key",
        "priority",
        "snapshot",
        "task",
    )

    def __init__(
        self,
        owner: Any,
        loop: asyncio.AbstractEventLoop,
        task: Task[Any],
        priority: Priority,
        state: TaskState | None,
        ident: int,
        queued_at: float,
        store: SnapshotStore | None,
    ) -> None:
        _future_init(self, loop=loop)
        self._owner = owner  # the executor's HandleOwner
        self._deadline: asyncio.TimerHandle | None = None  # submit(timeout=...)
        self._within: asyncio.Timeout | None = None  # the asyncio.timeout of execute(timeout=)
        self.task = task
        self.key = task.key
        self.priority = priority
        self.attempt = 0
        self.snapshot = task.saved_state
        self._task_state = state  # None until the first run for a task without state
        self._id = ident
        self._queued_at = queued_at  # time.perf_counter() when it last entered a lane
        self._store = store  # only for keyed tasks
        self._phase = QUEUED
        self._loaded = task.saved_state is not None or store is None
        self._preemptions = 0
        self._worker_id: int | None = None  # the worker of the current or last run
        self._ctx: InterruptContext | None = None
        self._scope: Any = None  # the running attempt's anyio.CancelScope
        self._entry: int | None = None  # its sequence number in its lane, while queued
        self._first_attached = True  # the caller that created it still waits
        self._joined: list[AttachedHandle] | None = None  # callers that joined by key
        self._gave_up: str | None = None  # how the last attached caller left
        # Computes run in a copy of the submitting caller's context, as create_task does.
        self._context = contextvars.copy_context()

    @property
    def name(self) -> str:
        """The task's name."""
        return self.task.name

    def _keep_snapshot(self, data: bytes) -> None:
        """Keep ``data`` as the latest snapshot (called by the run's context)."""
        self.snapshot = data

    async def _persist_snapshot(self, data: bytes) -> None:
        """Write ``data`` to the snapshot store (keyed tasks only)."""
        if self._store is not None and self.key is not None:
            await self._store.save(self.key, data)

    def _attached(self) -> list[AttachedHandle]:
        """The handles whose callers still wait for this execution's outcome."""
        first: list[AttachedHandle] = [self] if self._first_attached else []
        return first + self._joined if self._joined else first

    def _attach(self, handle: AttachedHandle) -> None:
        """Attach the handle of a caller that joins by key."""
        if self._joined is None:
            self._joined = [handle]
        else:
            self._joined.append(handle)

    def _detach(self, handle: AttachedHandle) -> bool:
        """Detach ``handle``; False if it was not attached."""
        if handle is self:
            attached, self._first_attached = self._first_attached, False
            return attached
        joined = self._joined
        if joined is None or handle not in joined:
            return False
        joined.remove(handle)
        return True

    def _has_attached(self) -> bool:
        """True while some caller still waits."""
        return self._first_attached or bool(self._joined)

    def _release(self) -> None:
        """Let go of every handle (the execution has ended)."""
        self._first_attached = False
        self._joined = None

    def _abandoned(self) -> bool:
        """True when every attached caller already has its outcome (it gave up, and its
        handle has not yet detached), or none is attached."""
        if self._first_attached and not self.done():
            return False
        return all(handle.done() for handle in self._joined or ())

    def __repr__(self) -> str:
        return (
            f"<Execution {self.task.name!r} {self.priority} {PHASE_NAMES[self._phase]} "
            f"attempt={self.attempt} handles={len(self._attached())}>"
        )


_future_init = asyncio.Future.__init__
