"""The event emitter: turns the executor's steps into :class:`SchedulerEvent` values.

An executor configured without ``on_event`` has no emitter at all (its ``_events`` is
None), so each step costs one ``is not None`` check and no event is built. With one, the
emitter numbers executions, remembers which worker runs each, and hands every event to
every callback in turn; a callback that raises is logged and the others still run.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._events import EventCallback, EventKind, SchedulerEvent
from ._lanes import RUNNING

if TYPE_CHECKING:
    from ._task import TaskHandle

__all__ = ("EventEmitter",)


class _Execution:
    """What the emitter knows of one live execution."""

    __slots__ = ("number", "worker_id")

    def __init__(self, number: int) -> None:
        self.number = number
        self.worker_id: int | None = None  # the worker of its latest run


class EventEmitter:
    """Builds the events of one executor and delivers them to its callbacks.

    Invariants:
        * Every admitted execution gets exactly one ``submitted`` event first and exactly
          one ending event (``completed``, ``failed``, ``cancelled``, ``timed_out``) last;
          the emitter forgets it then, so it holds only live executions.
        * Events are delivered synchronously, in the order the steps happen, from the
          code that takes the step (``submitted`` from the submitting coroutine).
    """

    __slots__ = ("_callbacks", "_executions", "_log", "_loop", "_numbers")

    def __init__(self, callbacks: EventCallback | tuple[EventCallback, ...]) -> None:
        self._callbacks = callbacks if isinstance(callbacks, tuple) else (callbacks,)
        self._executions: dict[TaskHandle[Any], _Execution] = {}
        self._numbers = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log: Any = None

    def bind(self, loop: asyncio.AbstractEventLoop, log: Any) -> None:
        """Use ``loop``'s clock for event times and ``log`` for failing callbacks."""
        self._loop = loop
        self._log = log

    def submitted(self, handle: TaskHandle[Any]) -> None:
        """A new execution was admitted to its lane."""
        self._numbers += 1
        self._executions[handle] = _Execution(self._numbers)
        self._emit("submitted", handle, None, None)

    def run_started(self, handle: TaskHandle[Any], worker_id: int) -> None:
        """A run began on a worker: ``started`` for the first, ``resumed`` for reruns."""
        execution = self._executions.get(handle)
        if execution is not None:
            execution.worker_id = worker_id
        kind: EventKind = "started" if handle._attempt == 1 else "resumed"
        self._emit(kind, handle, worker_id, None)

    def run_preempted(self, handle: TaskHandle[Any], worker_id: int) -> None:
        """A run that was interrupted by a preemption has ended."""
        self._emit("preempted", handle, worker_id, "preempted")

    def joined(self, handle: TaskHandle[Any]) -> None:
        """A submit of a live key attached a new caller to ``handle``'s execution."""
        self._emit("joined", handle, self._worker_if_running(handle), None)

    def promoted(self, handle: TaskHandle[Any], reason: str) -> None:
        """``handle``'s execution moved to a more urgent lane (``handle._priority`` is
        already the new one); ``reason`` is ``"joined"``, ``"promote"`` or ``"aged"``."""
        self._emit("promoted", handle, self._worker_if_running(handle), reason)

    def _worker_if_running(self, handle: TaskHandle[Any]) -> int | None:
        execution = self._executions.get(handle)
        if execution is None or handle._phase != RUNNING:
            return None
        return execution.worker_id

    def ended(self, handle: TaskHandle[Any], kind: EventKind) -> None:
        """The execution ended as its callers see it; call before its phase turns DONE."""
        worker_id = self._worker_if_running(handle)
        reason = None
        if kind == "cancelled":
            # A shutdown settles the future with ExecutorShutdownError; a caller's cancel
            # (or a compute cancelling itself) leaves it cancelled.
            reason = "cancelled" if handle._future.cancelled() else "shutdown"
        self._emit(kind, handle, worker_id, reason)
        self._executions.pop(handle, None)

    def _emit(
        self, kind: EventKind, handle: TaskHandle[Any], worker_id: int | None, reason: str | None
    ) -> None:
        execution = self._executions.get(handle)
        assert self._loop is not None
        event = SchedulerEvent(
            kind=kind,
            task=handle._task.name,
            key=getattr(handle._task, "key", None),
            priority=handle._priority,
            worker_id=worker_id,
            attempt=handle._attempt,
            time=self._loop.time(),
            execution=execution.number if execution is not None else 0,
            reason=reason,
        )
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception as exc:
                # Scheduling must go on whatever an observer does.
                self._log.error(
                    "event_callback_failed",
                    callback=repr(callback),
                    kind=kind,
                    task=event.task,
                    exc_info=exc,
                )
