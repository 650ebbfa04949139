"""TaskHandle: one caller's view of an execution — an ``asyncio.Future`` of its outcome.

:class:`TaskHandle` is the caller-facing API and nothing else. Two siblings build on it:
the execution itself (``_execution.Execution``: the first caller's handle *is* the
execution, one object per submit) and :class:`JoinedHandle` (a caller that joined a live
execution by key: a future of its own that reads the execution it joined).
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any, Literal, Protocol, TypeVar

from ._cpython import forget_unretrieved, future_unretrieved
from ._exceptions import ExecutorShutdownError, HandleNotDoneError
from ._priority import Priority
from ._task import Task, check_priority

__all__ = (
    "PHASE_NAMES",
    "PHASE_STATUS",
    "DetachReason",
    "HandleOwner",
    "JoinedHandle",
    "SharedWork",
    "TaskHandle",
    "TaskStatus",
    "settle_exception",
)

T = TypeVar("T")

DetachReason = Literal["cancelled", "timeout"]

# An execution's phases are plain ints (compared on every pop); PHASE_NAMES names them.
PHASE_NAMES = ("queued", "preempted", "running", "done")


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

# The future's own methods, for the executor's side: a handle refuses them from callers.
_future_init = asyncio.Future.__init__
_future_cancel = asyncio.Future.cancel
_future_result = asyncio.Future.result
_future_exception = asyncio.Future.exception
_future_set_exception = asyncio.Future.set_exception


def settle_exception(handle: TaskHandle[Any], error: BaseException) -> None:
    """Give one caller ``error`` (the executor's side of ``set_exception``): a
    ``submit(timeout=)`` that expired. A run's outcome goes through ``settle_all``."""
    _future_set_exception(handle, error)


class SharedWork(Protocol):
    """What a handle reads of the execution it is attached to."""

    @property
    def task(self) -> Task[Any]: ...
    @property
    def key(self) -> str | None: ...
    @property
    def priority(self) -> Priority: ...
    @property
    def attempt(self) -> int: ...
    @property
    def snapshot(self) -> bytes | None: ...
    @property
    def phase(self) -> int:
        """QUEUED, PREEMPTED, RUNNING or DONE (see ``_execution``)."""
        ...


class HandleOwner(Protocol):
    """What a handle asks of its executor."""

    log: Any

    def detach(self, handle: TaskHandle[Any], reason: DetachReason) -> None:
        """The handle's caller gave up: detach it, ending the execution if it was the last."""
        ...

    def promote(self, work: Any, priority: Priority, reason: str) -> bool:
        """Move ``work`` to a more urgent lane; False if ``priority`` is not more urgent."""
        ...


class TaskHandle(asyncio.Future[T]):
    """One caller's handle on an execution: an ``asyncio.Future`` of its outcome.

    Awaiting the handle gives what ``execute`` would: the result, or the task's exception,
    ``TimeoutError``, ``ExecutorShutdownError``, ``StateRestoreError`` or
    ``TaskInterruptedError``. As with an ``asyncio.Task``, cancelling a coroutine that
    awaits the handle cancels the handle, and everything that takes a future takes it:
    ``asyncio.wait``, ``asyncio.as_completed``, ``asyncio.gather``, ``add_done_callback``
    (the callback gets the handle). Only the executor settles it: ``set_result`` and
    ``set_exception`` raise ``RuntimeError``, as they do on an ``asyncio.Task``.

    Several handles share one execution when tasks with the same ``key`` are submitted
    while it is live: each gets the same outcome, and :meth:`cancel` detaches only its
    own handle — the execution is cancelled once its last handle is.

    A failure that nobody retrieves (a fire-and-forget handle) is logged once, at WARNING
    with its traceback, as ``task_failed_unobserved`` when the handle is collected —
    instead of asyncio's "exception was never retrieved".

    Attributes (read-only):
        task: The task the execution runs (for a joined handle: the task that created it).
        key: The task's key, or None.
        priority: The lane the execution is queued in (after a promotion, the new one).
        attempt: How many runs have started so far (0 while first queued).
        snapshot: The execution's latest snapshot (from ``save_state``), or None; an app
            can persist it to resume the work elsewhere, e.g. as ``saved_state``.

    Handles are created by :meth:`TaskExecutor.submit` and :meth:`TaskExecutor.submit_nowait`.
    """

    __module__ = "microscheduler"
    # _execute_timeout: the asyncio.Timeout of this caller's execute(timeout=), if any;
    # _submit_deadline: the call_later handle of its submit(timeout=), if any.
    __slots__ = ("_execute_timeout", "_owner", "_submit_deadline")
    _execute_timeout: asyncio.Timeout | None
    _owner: Any  # the executor's HandleOwner
    _submit_deadline: asyncio.TimerHandle | None

    @property
    def _shared(self) -> SharedWork:
        """The execution this handle is attached to."""
        raise NotImplementedError

    @property
    def task(self) -> Task[Any]:
        """The task the execution runs."""
        return self._shared.task

    @property
    def key(self) -> str | None:
        """The execution's key, or None."""
        return self._shared.key

    @property
    def priority(self) -> Priority:
        """The lane the execution is queued in."""
        return self._shared.priority

    @property
    def attempt(self) -> int:
        """How many runs of the execution have started."""
        return self._shared.attempt

    @property
    def snapshot(self) -> bytes | None:
        """The execution's latest snapshot, or None."""
        return self._shared.snapshot

    @property
    def name(self) -> str:
        """The task's name."""
        return self.task.name

    @property
    def status(self) -> TaskStatus:
        """Where this execution stands, as this handle's caller sees it."""
        if not self.done():
            return PHASE_STATUS[min(self._shared.phase, 2)]
        if self.cancelled():
            return TaskStatus.CANCELLED
        error = _future_exception(self)
        if error is None:
            return TaskStatus.COMPLETED
        if isinstance(error, ExecutorShutdownError):
            return TaskStatus.CANCELLED
        return TaskStatus.FAILED

    def promote(self, priority: Priority | int) -> bool:
        """Move the execution to a more urgent lane.

        A queued or preempted execution moves to ``priority``'s lane, keeping its saved
        state; a running Background run promoted to UI or LastEffort is no longer
        preemptible. Never demotes.

        Returns:
            True if the execution was promoted; False if ``priority`` is not more urgent
            than its lane, or it already has an outcome.

        Raises:
            ValueError: ``priority`` is not a :class:`Priority`.
        """
        priority = check_priority(priority)
        if self.done():
            return False
        owner: HandleOwner = self._owner
        return owner.promote(self._shared, priority, "promote")

    def result(self) -> T:
        """Return the result, or raise the execution's exception.

        Raises:
            HandleNotDoneError: The execution has no outcome yet (a ``RuntimeError`` and an
                ``asyncio.InvalidStateError``).
            asyncio.CancelledError: The handle was cancelled.
        """
        if not self.done():
            raise HandleNotDoneError(
                f"task {self.name!r} is not done yet; await the handle instead"
            )
        result: T = _future_result(self)
        return result

    def exception(self) -> BaseException | None:
        """Return the execution's exception, or None if it completed.

        Raises:
            HandleNotDoneError: The execution has no outcome yet (a ``RuntimeError`` and an
                ``asyncio.InvalidStateError``).
            asyncio.CancelledError: The handle was cancelled.
        """
        if not self.done():
            raise HandleNotDoneError(
                f"task {self.name!r} is not done yet; await the handle instead"
            )
        return _future_exception(self)

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel this handle: its awaiters get ``CancelledError``.

        The execution is withdrawn (if queued) or interrupted (if running) once no other
        handle is attached to it. Cancelling a coroutine that awaits the handle calls this.

        Returns:
            False if the handle already had an outcome, else True.
        """
        if not _future_cancel(self, msg):
            return False
        if self._execute_timeout is not None:
            return True  # execute(timeout=) detaches it, knowing whether it timed out
        owner: HandleOwner = self._owner
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # Called while the executor's loop is paused (as Task.cancel() may be): the run
            # is interrupted as soon as the loop runs again.
            self.get_loop().call_soon(owner.detach, self, "cancelled")
        else:
            owner.detach(self, "cancelled")
        return True

    def set_result(self, result: object) -> None:
        """Refused: only the executor settles a handle."""
        raise RuntimeError("TaskHandle does not support set_result: the executor settles it")

    def set_exception(self, exception: object) -> None:
        """Refused: only the executor settles a handle."""
        raise RuntimeError("TaskHandle does not support set_exception: the executor settles it")

    def _retrieve_quietly(self) -> None:
        """Mark an expected failure (a shutdown) as retrieved: nothing to log for it."""
        forget_unretrieved(self)

    def __del__(self) -> None:
        if future_unretrieved(self):  # it failed, and nobody retrieved the failure
            forget_unretrieved(self)
            shared = self._shared
            log = self._owner.log
            if log is not None:
                log.warning(
                    "task_failed_unobserved",
                    task=shared.task.name,
                    priority=str(shared.priority),
                    attempt=shared.attempt,
                    exc_info=_future_exception(self),
                )

    def __repr__(self) -> str:
        shared = self._shared
        key = "" if shared.key is None else f" key={shared.key!r}"
        return (
            f"<TaskHandle {self.name!r}{key} {shared.priority} {self.status.value} "
            f"phase={PHASE_NAMES[shared.phase]} attempt={shared.attempt}>"
        )


class JoinedHandle(TaskHandle[T]):
    """The handle of a caller that joined a live execution by key.

    Its own future carries this caller's outcome (it can be cancelled on its own); what
    it says of the work is read from the execution it joined. It is not an execution.
    """

    __slots__ = ("_joined",)

    def __init__(
        self, owner: HandleOwner, execution: SharedWork, loop: asyncio.AbstractEventLoop
    ) -> None:
        _future_init(self, loop=loop)
        self._owner = owner
        self._joined = execution
        self._submit_deadline: asyncio.TimerHandle | None = None
        self._execute_timeout: asyncio.Timeout | None = None

    @property
    def _shared(self) -> SharedWork:
        return self._joined
