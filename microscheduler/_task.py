"""Tasks (what to run) and task handles (one queued or running execution of a task)."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import inspect
import math
from collections.abc import Awaitable, Callable, Generator
from inspect import CO_COROUTINE
from types import FunctionType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ._exceptions import ExecutorShutdownError
from ._interrupt import InterruptContext
from ._lanes import PREEMPTED, QUEUED, RUNNING
from ._priority import Priority
from ._state import NoOpTaskState, TaskState

if TYPE_CHECKING:
    from ._executor import TaskExecutor

__all__ = ("Compute", "Task", "TaskHandle", "TaskStatus")

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: ``compute(resource, state, interrupt)``: an ``async def`` runs on the event loop, a plain
#: ``def`` runs in a worker thread.
#: The state argument is typed ``Any`` so a compute may annotate its own state class.
Compute = Callable[[Any, Any, "InterruptContext"], "Awaitable[T] | T"]


def _is_async_callable(obj: object) -> bool:
    if type(obj) is FunctionType and obj.__code__.co_flags & CO_COROUTINE:
        return True  # the common case, without inspect's unwrapping
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - an instance with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def check_priority(priority: object, what: str = "priority") -> Priority:
    """Return ``priority`` if it is a :class:`Priority`, else raise ``ValueError``."""
    if not isinstance(priority, Priority):
        raise ValueError(
            f"{what} must be a Priority (Priority.UI, Priority.LAST_EFFORT or "
            f"Priority.BACKGROUND), got {priority!r}"
        )
    return priority


def check_timeout(timeout: object, what: str = "timeout") -> float | None:
    """Return ``timeout`` if it is None or a non-negative number of seconds."""
    if timeout is None:
        return None
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise TypeError(f"{what} must be a number of seconds or None, got {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{what} must be >= 0 seconds or None, got {timeout!r}")
    return float(timeout)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, eq=False, init=False)
class Task(Generic[T]):
    """A unit of work for a :class:`TaskExecutor`.

    A task may be executed many times; each execution gets its own handle. Its
    ``initial_state`` object is passed to every run of ``compute`` and, when the executor
    holds a snapshot for the execution (``saved_state``, or one saved by an earlier,
    preempted run), is restored from it just before the run.

    Attributes:
        name: A non-empty name, used in logs and errors.
        compute: ``compute(resource, state, interrupt)``. An ``async def`` (or an object
            whose ``__call__`` is one) runs on the event loop; a plain ``def`` runs in a
            worker thread, where ``interrupt.is_interrupted()`` is safe to poll.
        priority: The lane used when ``execute``/``submit`` name none.
        initial_state: The state passed to compute; None means a fresh
            :class:`NoOpTaskState` per execution.
        saved_state: A snapshot to restore into ``initial_state`` before the first run.
        timeout: Limit in seconds on one run of compute (queue time and time spent
            preempted do not count); on expiry the caller gets ``TimeoutError`` and the
            task is not run again.

    Raises:
        TypeError: ``name`` is not a string, ``compute`` is not callable, or
            ``initial_state`` does not satisfy :class:`TaskState`.
        ValueError: ``name`` is empty, ``priority`` is not a :class:`Priority`, or
            ``timeout`` is negative.
    """

    __module__ = "microscheduler"

    name: str
    compute: Compute[T]
    priority: Priority = Priority.BACKGROUND
    initial_state: TaskState | None = None
    saved_state: bytes | None = None
    timeout: float | None = None
    is_async: bool = dataclasses.field(init=False, repr=False)

    # Two signatures so type checkers infer T from an async compute's awaited value as
    # well as from a sync compute's return value.
    @overload
    def __init__(
        self: Task[T],
        *,
        name: str,
        compute: Callable[[Any, Any, InterruptContext], Awaitable[T]],
        priority: Priority = ...,
        initial_state: TaskState | None = ...,
        saved_state: bytes | None = ...,
        timeout: float | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self: Task[T],
        *,
        name: str,
        compute: Callable[[Any, Any, InterruptContext], T],
        priority: Priority = ...,
        initial_state: TaskState | None = ...,
        saved_state: bytes | None = ...,
        timeout: float | None = ...,
    ) -> None: ...

    def __init__(
        self,
        *,
        name: str,
        compute: Compute[T],
        priority: Priority = Priority.BACKGROUND,
        initial_state: TaskState | None = None,
        saved_state: bytes | None = None,
        timeout: float | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"Task name must be a str, got {name!r}")
        if not name or name.isspace():
            raise ValueError("Task name must not be empty")
        if not callable(compute):
            raise TypeError(
                f"Task compute must be callable as compute(resource, state, interrupt), "
                f"got {compute!r}"
            )
        if priority.__class__ is not Priority:
            check_priority(priority, "Task priority")
        if initial_state is not None and not isinstance(initial_state, TaskState):
            raise TypeError(
                f"Task initial_state must satisfy TaskState (save() -> bytes and "
                f"restore(data: bytes)), got {initial_state!r}"
            )
        if saved_state is not None:
            if not isinstance(saved_state, bytes | bytearray | memoryview):
                raise TypeError(f"Task saved_state must be bytes or None, got {saved_state!r}")
            saved_state = bytes(saved_state)
        if timeout is not None:
            timeout = check_timeout(timeout, "Task timeout")
        _set_name(self, name)
        _set_compute(self, compute)
        _set_priority(self, priority)
        _set_initial_state(self, initial_state)
        _set_saved_state(self, saved_state)
        _set_timeout(self, timeout)
        _set_is_async(self, _is_async_callable(compute))


# A frozen dataclass's fields are set through their slot descriptors: object.__setattr__
# on a class that overrides __setattr__ costs several times more, on every Task().
_set_name, _set_compute, _set_priority, _set_initial_state, _set_saved_state, _set_timeout = (
    Task.__dict__[field].__set__
    for field in ("name", "compute", "priority", "initial_state", "saved_state", "timeout")
)
_set_is_async = Task.__dict__["is_async"].__set__


class TaskStatus(enum.Enum):
    """Where one execution of a task stands."""

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


_PHASE_STATUS = {
    QUEUED: TaskStatus.QUEUED,
    PREEMPTED: TaskStatus.PREEMPTED,
    RUNNING: TaskStatus.RUNNING,
}


class TaskHandle(Generic[T_co]):
    """One execution of a task: await it for the result.

    Awaiting the handle gives what ``execute`` would: the result, or the task's exception,
    ``TimeoutError``, ``ExecutorShutdownError``, ``StateRestoreError`` or
    ``TaskInterruptedError``. As with an ``asyncio.Task``, cancelling a coroutine that
    awaits the handle cancels the execution: a queued task is withdrawn, a running one is
    interrupted and never rerun.

    Handles are created by :meth:`TaskExecutor.submit` and :meth:`TaskExecutor.submit_nowait`.
    """

    __module__ = "microscheduler"
    __slots__ = (
        "__weakref__",
        "_attempt",
        "_ctx",
        "_deadline",
        "_executor",
        "_future",
        "_phase",
        "_priority",
        "_queued_at",
        "_scope",
        "_snapshot",
        "_state",
        "_task",
    )

    def __init__(
        self,
        executor: TaskExecutor,
        task: Task[T_co],
        priority: Priority,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._executor = executor
        self._task = task
        self._priority = priority
        self._future: asyncio.Future[T_co] = loop.create_future()
        self._phase = QUEUED
        state = task.initial_state
        self._state: TaskState = NoOpTaskState() if state is None else state
        self._snapshot = task.saved_state
        self._attempt = 0
        self._ctx: InterruptContext | None = None
        self._scope: Any = None  # the running attempt's anyio.CancelScope
        self._deadline: asyncio.TimerHandle | None = None  # execute(timeout=...)
        self._queued_at = 0.0  # when it last entered a lane (_stats.clock()), for queue waits

    @property
    def name(self) -> str:
        """The task's name."""
        return self._task.name

    @property
    def task(self) -> Task[T_co]:
        """The task this handle executes."""
        return self._task

    @property
    def priority(self) -> Priority:
        """The lane the task was queued in."""
        return self._priority

    @property
    def attempt(self) -> int:
        """How many runs have started so far (0 while first queued)."""
        return self._attempt

    @property
    def status(self) -> TaskStatus:
        """Where this execution stands, as its caller sees it."""
        future = self._future
        if not future.done():
            return _PHASE_STATUS[self._phase]
        if future.cancelled():
            return TaskStatus.CANCELLED
        error = future.exception()
        if error is None:
            return TaskStatus.COMPLETED
        if isinstance(error, ExecutorShutdownError):
            return TaskStatus.CANCELLED
        return TaskStatus.FAILED

    def done(self) -> bool:
        """True once the execution has an outcome."""
        return self._future.done()

    def result(self) -> T_co:
        """Return the result, or raise the execution's exception.

        Raises:
            RuntimeError: The execution has no outcome yet.
            asyncio.CancelledError: The execution was cancelled.
        """
        if not self._future.done():
            raise RuntimeError(f"task {self.name!r} is not done yet; await the handle instead")
        return self._future.result()

    def cancel(self) -> bool:
        """Cancel the execution: withdraw it if queued, interrupt it if running.

        Returns:
            False if the execution already had an outcome, else True.
        """
        if not self._future.cancel():
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # Called while the executor's loop is paused (as Task.cancel() may be): the run
            # is interrupted as soon as the loop runs again.
            self._future.get_loop().call_soon(self._executor._abandon, self)
        else:
            self._executor._abandon(self)
        return True

    def __await__(self) -> Generator[Any, None, T_co]:
        try:
            return (yield from self._future.__await__())
        except asyncio.CancelledError:
            # The awaiting task was cancelled, which cancelled the future it waited on.
            if self._future.cancelled():
                self._executor._abandon(self)
            raise

    def __repr__(self) -> str:
        status = self.status.value
        return f"<TaskHandle {self.name!r} {self._priority} {status} attempt={self._attempt}>"
