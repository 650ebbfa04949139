"""TaskHandle: one caller's view of an execution — an ``asyncio.Future`` of its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

from ._exceptions import ExecutorShutdownError, HandleNotDoneError
from ._execution import PHASE_NAMES, PHASE_STATUS, AttachedHandle, Execution, TaskStatus
from ._priority import Priority
from ._task import Task, check_priority

__all__ = (
    "DetachReason",
    "HandleOwner",
    "JoinedHandle",
    "TaskHandle",
    "retrieve_exception",
    "settle_cancelled",
    "settle_exception",
    "settle_result",
)

T = TypeVar("T")

DetachReason = Literal["cancelled", "timeout"]

# The future's own methods, for the executor's side: a handle refuses them from callers.
# (Typed for the handles an execution holds, which are always TaskHandles.)
settle_result: Callable[[AttachedHandle, object], None] = asyncio.Future.set_result  # type: ignore[assignment]
settle_exception: Callable[[AttachedHandle, BaseException], None] = asyncio.Future.set_exception  # type: ignore[assignment]
settle_cancelled: Callable[[AttachedHandle], bool] = asyncio.Future.cancel  # type: ignore[assignment]
retrieve_exception: Callable[[AttachedHandle], object] = asyncio.Future.exception  # type: ignore[assignment]
_future_init = asyncio.Future.__init__
_future_cancel = asyncio.Future.cancel
_future_result = asyncio.Future.result
_future_exception = asyncio.Future.exception


class HandleOwner(Protocol):
    """What a handle asks of its executor."""

    log: Any

    def detach(self, handle: TaskHandle[Any], reason: DetachReason) -> None:
        """The handle's caller gave up: detach it, ending the execution if it was the last."""
        ...

    def promote(self, execution: Execution, priority: Priority, reason: str) -> bool:
        """Move ``execution`` to a more urgent lane; False if ``priority`` is not more urgent."""
        ...


class TaskHandle(Execution[T]):
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
    __slots__ = ()

    @property
    def _shared(self) -> Execution:
        """The execution this handle is attached to: the first caller's handle is it."""
        return self

    @property
    def status(self) -> TaskStatus:
        """Where this execution stands, as this handle's caller sees it."""
        if not self.done():
            return PHASE_STATUS[min(self._shared._phase, 2)]
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
        if self._within is not None:
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

    def __del__(self) -> None:
        if self._log_traceback:  # it failed, and nobody retrieved the failure
            self._log_traceback = False
            execution = self._shared
            log = self._owner.log
            if log is not None:
                log.warning(
                    "task_failed_unobserved",
                    task=execution.task.name,
                    priority=str(execution.priority),
                    attempt=execution.attempt,
                    exc_info=_future_exception(self),
                )

    def __repr__(self) -> str:
        execution = self._shared
        status = self.status.value
        phase = PHASE_NAMES[execution._phase]
        key = "" if execution.key is None else f" key={execution.key!r}"
        return (
            f"<TaskHandle {self.name!r}{key} {execution.priority} {status} phase={phase} "
            f"attempt={execution.attempt}>"
        )


class JoinedHandle(TaskHandle[T]):
    """The handle of a caller that joined a live execution by key.

    Its own future carries this caller's outcome (it can be cancelled on its own); what
    it says of the work is read from the execution it joined.
    """

    __slots__ = ("_joined_execution",)

    def __init__(  # the execution's fields are those of the one it joined, not its own
        self, owner: HandleOwner, execution: Execution, loop: asyncio.AbstractEventLoop
    ) -> None:
        _future_init(self, loop=loop)
        self._owner = owner
        self._joined_execution = execution
        self._deadline = None
        self._within = None

    @property
    def _shared(self) -> Execution:
        return self._joined_execution

    @property
    def task(self) -> Task[Any]:  # type: ignore[override]
        """The task that created the execution this handle joined."""
        return self._joined_execution.task

    @property
    def key(self) -> str | None:  # type: ignore[override]
        """The key this handle joined by."""
        return self._joined_execution.key

    @property
    def priority(self) -> Priority:  # type: ignore[override]
        """The lane the joined execution is queued in."""
        return self._joined_execution.priority

    @property
    def attempt(self) -> int:  # type: ignore[override]
        """How many runs of the joined execution have started."""
        return self._joined_execution.attempt

    @property
    def snapshot(self) -> bytes | None:  # type: ignore[override]
        """The joined execution's latest snapshot, or None."""
        return self._joined_execution.snapshot
