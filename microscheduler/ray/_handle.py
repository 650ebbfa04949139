"""RemoteTaskHandle: one execution in a scheduler actor, as a client process sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

import ray
from ray.exceptions import RayActorError, TaskCancelledError

from microscheduler import ExecutorShutdownError, Priority, Task, TaskStatus
from microscheduler._exceptions import HandleNotDoneError
from microscheduler._logging import logger

from ._errors import SchedulerUnavailableError, scheduler_gone
from ._server import Outcome

__all__ = ("RemoteTaskHandle", "rebuild")

T_co = TypeVar("T_co", covariant=True)


def rebuild(outcome: Outcome) -> BaseException:
    """The exception an ``("error", exception, cause)`` outcome carries, cause re-attached."""
    _, error, cause = outcome
    if cause is not None and error.__cause__ is None:
        error.__cause__ = cause
    assert isinstance(error, BaseException)
    return error


class RemoteTaskHandle(Generic[T_co]):
    """One execution in a scheduler actor: await it for the result.

    It behaves like :class:`microscheduler.TaskHandle`: ``await handle``, ``cancel()``,
    ``done()``, ``result()``, ``status``, ``name``, ``priority``. ``status`` is the last
    status the scheduler reported (it arrives a Ray round trip late); once the handle is
    done it is exact.
    """

    __module__ = "microscheduler.ray"

    def __init__(
        self,
        scheduler: str,
        stream: Any,
        task: Task[T_co],
        priority: Priority,
        on_end: Callable[[RemoteTaskHandle[Any]], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self._scheduler = scheduler
        self._on_end = on_end
        self._stream = stream
        self._task = task
        self._priority = priority
        self._status = TaskStatus.QUEUED
        self._future: asyncio.Future[T_co] = loop.create_future()
        self._follower = loop.create_task(
            self._follow(), name=f"microscheduler-ray-follow-{task.name}"
        )

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
    def status(self) -> TaskStatus:
        """Where this execution stands, as last reported by the scheduler."""
        future = self._future
        if not future.done():
            return self._status
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
            HandleNotDoneError: The execution has no outcome yet (a ``RuntimeError`` and an
                ``asyncio.InvalidStateError``).
            asyncio.CancelledError: The execution was cancelled.
        """
        if not self._future.done():
            raise HandleNotDoneError(
                f"task {self.name!r} is not done yet; await the handle instead"
            )
        return self._future.result()

    def cancel(self) -> bool:
        """Cancel the execution in the scheduler: withdrawn if queued, interrupted if running.

        Returns:
            False if the execution already had an outcome, else True.
        """
        if not self._future.cancel():
            return False
        self._cancel_remote()
        return True

    def _cancel_remote(self) -> None:
        try:
            ray.cancel(self._stream)
        except Exception as exc:  # Ray is shut down: the scheduler is out of reach
            logger.warning("remote_cancel_failed", task=self.name, error=repr(exc))

    def __await__(self) -> Generator[Any, None, T_co]:
        try:
            return (yield from self._future.__await__())
        except asyncio.CancelledError:
            if self._future.cancelled():
                self._cancel_remote()
            raise

    def __repr__(self) -> str:
        key = "" if self._task.key is None else f" key={self._task.key!r}"
        return f"<RemoteTaskHandle {self.name!r}{key} {self._priority} {self.status.value}>"

    async def _follow(self) -> None:
        """Consume the scheduler's reports for this call until its outcome."""
        try:
            async for ref in self._stream:
                kind, value = await ref
                if kind == "status":
                    self._status = TaskStatus(value)
                elif kind == "outcome":
                    self._settle(value)
        except TaskCancelledError:
            pass  # cancelled by this handle: the future is already cancelled
        except RayActorError as exc:
            self._fail(scheduler_gone(self._scheduler, exc))
        except Exception as exc:
            self._fail(scheduler_gone(self._scheduler, exc))
        finally:
            self._on_end(self)
            if not self._future.done():
                self._fail(
                    SchedulerUnavailableError(
                        f"the scheduler actor {self._scheduler!r} ended the call to task "
                        f"{self.name!r} without an outcome"
                    )
                )

    def _settle(self, outcome: Outcome) -> None:
        future = self._future
        if future.done():
            return
        if outcome[0] == "result":
            future.set_result(outcome[1])
        elif outcome[0] == "cancelled":
            future.cancel()
        else:
            error = rebuild(outcome)
            future.set_exception(error)
            if isinstance(error, ExecutorShutdownError):
                future.exception()  # expected news, as with the executor's own handles

    def _fail(self, error: BaseException) -> None:
        if not self._future.done():
            self._future.set_exception(error)
