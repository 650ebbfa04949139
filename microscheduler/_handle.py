"""TaskHandle: one caller's view of an execution, awaitable like an ``asyncio.Task``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any, Generic, Literal, Protocol, TypeVar

from ._exceptions import ExecutorShutdownError
from ._execution import PHASE_NAMES, PHASE_STATUS, Execution, TaskStatus
from ._priority import Priority
from ._task import Task, check_priority

__all__ = ("DetachReason", "HandleOwner", "TaskHandle")

T_co = TypeVar("T_co", covariant=True)

DetachReason = Literal["cancelled", "timeout"]


class HandleOwner(Protocol):
    """What a handle asks of its executor."""

    log: Any

    def detach(self, handle: TaskHandle[Any], reason: DetachReason) -> None:
        """The handle's caller gave up: detach it, ending the execution if it was the last."""
        ...

    def promote(self, execution: Execution, priority: Priority, reason: str) -> bool:
        """Move ``execution`` to a more urgent lane; False if ``priority`` is not more urgent."""
        ...


class TaskHandle(Generic[T_co]):
    """One caller's handle on an execution: await it for the result.

    Awaiting the handle gives what ``execute`` would: the result, or the task's exception,
    ``TimeoutError``, ``ExecutorShutdownError``, ``StateRestoreError`` or
    ``TaskInterruptedError``. As with an ``asyncio.Task``, cancelling a coroutine that
    awaits the handle cancels it. A handle also works where asyncio expects a future:
    ``asyncio.wait``, ``asyncio.as_completed`` and ``asyncio.gather`` accept it.

    Several handles share one execution when tasks with the same ``key`` are submitted
    while it is live: each gets the same outcome, and :meth:`cancel` detaches only its
    own handle — the execution is cancelled once its last handle is.

    Handles are created by :meth:`TaskExecutor.submit` and :meth:`TaskExecutor.submit_nowait`.
    """

    __module__ = "microscheduler"
    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_deadline",
        "_execution",
        "_future",
        "_owner",
        "_within",
    )

    def __init__(
        self, owner: HandleOwner, execution: Execution, future: asyncio.Future[T_co]
    ) -> None:
        self._owner = owner
        self._execution = execution
        self._future = future
        self._deadline: asyncio.TimerHandle | None = None  # submit(timeout=...)
        self._within: asyncio.Timeout | None = None  # the asyncio.timeout of execute(timeout=)
        self._callbacks: list[Callable[[TaskHandle[Any]], object]] | None = None

    @property
    def name(self) -> str:
        """The task's name."""
        return self._execution.task.name

    @property
    def task(self) -> Task[Any]:
        """The task the execution runs (for a joined handle: the task that created it)."""
        return self._execution.task

    @property
    def key(self) -> str | None:
        """The task's key, or None."""
        return self._execution.key

    @property
    def priority(self) -> Priority:
        """The lane the execution is queued in (after a promotion, the new one)."""
        return self._execution.priority

    @property
    def attempt(self) -> int:
        """How many runs have started so far (0 while first queued)."""
        return self._execution.attempt

    @property
    def snapshot(self) -> bytes | None:
        """The execution's latest snapshot (from ``save_state``), or None.

        An app can persist it to resume the work elsewhere, e.g. as ``saved_state``.
        """
        return self._execution.snapshot

    @property
    def status(self) -> TaskStatus:
        """Where this execution stands, as this handle's caller sees it."""
        future = self._future
        if not future.done():
            return PHASE_STATUS[min(self._execution.phase, 2)]
        if future.cancelled():
            return TaskStatus.CANCELLED
        error = future.exception()
        if error is None:
            return TaskStatus.COMPLETED
        if isinstance(error, ExecutorShutdownError):
            return TaskStatus.CANCELLED
        return TaskStatus.FAILED

    def promote(self, priority: Priority) -> bool:
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
        if self._future.done():
            return False
        return self._owner.promote(self._execution, priority, "promote")

    def done(self) -> bool:
        """True once this handle has an outcome."""
        return self._future.done()

    def cancelled(self) -> bool:
        """True if this handle was cancelled."""
        return self._future.cancelled()

    def result(self) -> T_co:
        """Return the result, or raise the execution's exception.

        Raises:
            RuntimeError: The execution has no outcome yet.
            asyncio.CancelledError: The handle was cancelled.
        """
        if not self._future.done():
            raise RuntimeError(f"task {self.name!r} is not done yet; await the handle instead")
        return self._future.result()

    def exception(self) -> BaseException | None:
        """Return the execution's exception, or None if it completed.

        Raises:
            RuntimeError: The execution has no outcome yet.
            asyncio.CancelledError: The handle was cancelled.
        """
        if not self._future.done():
            raise RuntimeError(f"task {self.name!r} is not done yet; await the handle instead")
        return self._future.exception()

    def add_done_callback(self, callback: Callable[[TaskHandle[Any]], object]) -> None:
        """Call ``callback(handle)`` once the handle is done (soon, if it already is)."""
        if self._callbacks is None:
            self._callbacks = []
            self._future.add_done_callback(self._run_callbacks)
        self._callbacks.append(callback)

    def remove_done_callback(self, callback: Callable[[TaskHandle[Any]], object]) -> int:
        """Remove every registration of ``callback``; return how many there were."""
        if not self._callbacks:
            return 0
        before = len(self._callbacks)
        self._callbacks = [cb for cb in self._callbacks if cb != callback]
        return before - len(self._callbacks)

    def _run_callbacks(self, _future: asyncio.Future[Any]) -> None:
        callbacks, self._callbacks = self._callbacks or [], None
        for callback in callbacks:
            callback(self)

    def cancel(self) -> bool:
        """Cancel this handle: its awaiters get ``CancelledError``.

        The execution is withdrawn (if queued) or interrupted (if running) once no other
        handle is attached to it.

        Returns:
            False if the handle already had an outcome, else True.
        """
        if not self._future.cancel():
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # Called while the executor's loop is paused (as Task.cancel() may be): the run
            # is interrupted as soon as the loop runs again.
            self._future.get_loop().call_soon(self._owner.detach, self, "cancelled")
        else:
            self._owner.detach(self, "cancelled")
        return True

    def __await__(self) -> Generator[Any, None, T_co]:
        try:
            return (yield from self._future.__await__())
        except asyncio.CancelledError:
            # The awaiting task was cancelled, which cancelled the future it waited on.
            if self._future.cancelled():
                self._owner.detach(self, "cancelled")
            raise

    def __repr__(self) -> str:
        execution = self._execution
        status = self.status.value
        phase = PHASE_NAMES[execution.phase]
        return (
            f"<TaskHandle {self.name!r} {execution.priority} {status} phase={phase} "
            f"attempt={execution.attempt}>"
        )
