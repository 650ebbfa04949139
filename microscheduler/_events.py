"""Scheduler events: one frozen value for each step of each execution.

An executor configured with ``WorkerConfig(on_event=...)`` calls the callback (or each of a
tuple of callbacks) synchronously, on the event loop, with a :class:`SchedulerEvent` for every
step of every execution, in the order the steps happen. Consumers such as
:class:`microscheduler.timeline.Timeline` and :func:`microscheduler.otel.tracing` are built on
it. A callback that raises anything but ``KeyboardInterrupt``/``SystemExit`` (a
``CancelledError`` included) is logged (``event_callback_failed``) and never disturbs
scheduling; an executor with no callback builds no events at all.

The run-context hook: ``started`` and ``resumed`` events are delivered inside the run's own
:mod:`contextvars` context, the copy of the submitter's context that the compute then runs
in. A callback that sets a context variable while handling them (``ContextVar.set``, or
OpenTelemetry's ``context.attach``) sets it for that run's compute, and for nothing else:
this is how :func:`microscheduler.otel.tracing` makes its run span the compute's current
span without the core knowing about OpenTelemetry. Every other event is delivered in the
context of whatever caused it (``submitted`` in the submitter's).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from ._priority import Priority

__all__ = ("EventCallback", "EventEmitter", "EventKind", "SchedulerEvent")

#: What happened. ``submitted``: an execution was admitted to a lane. ``joined``: a submit
#: of a live key attached a new handle to an existing execution. ``started``: a run began
#: on a worker (``attempt`` 1). ``resumed``: a rerun after a preemption began (``attempt``
#: 2 and more). ``preempted``: a run was interrupted so urgent work could go first.
#: ``promoted``: the execution moved to a more urgent lane. ``completed``, ``failed``,
#: ``cancelled``, ``timed_out``: the execution ended, as its callers see it.
EventKind = Literal[
    "submitted",
    "joined",
    "started",
    "resumed",
    "preempted",
    "promoted",
    "completed",
    "failed",
    "cancelled",
    "timed_out",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerEvent:
    """One step of one execution.

    Attributes:
        kind: What happened; see :data:`EventKind`.
        task: The task's name.
        key: The task's key, or None.
        priority: The lane the execution is in at this step (after a promotion, the new
            one).
        worker_id: The worker running it, for steps that happen on a worker (``started``,
            ``resumed``, ``preempted`` and the ends of runs); None for steps in a lane.
        attempt: The run this step belongs to: 0 before the first run, then 1, 2, ...
        time: ``loop.time()`` of the executor's event loop when the step happened.
        execution: An id unique within the executor, shared by every event of one
            execution (joined handles share their execution's id).
        reason: For ``promoted``, why (``"joined"``, ``"promote"`` or ``"aged"``); for
            ``preempted``, ``"preempted"``; for ``cancelled``, ``"cancelled"`` or
            ``"shutdown"``; otherwise None.
        error: For ``failed`` and ``timed_out``, the exception the callers get (what a
            tracer records); otherwise None.
    """

    __module__ = "microscheduler"

    kind: EventKind
    task: str
    key: str | None
    priority: Priority
    worker_id: int | None
    attempt: int
    time: float
    execution: int
    reason: str | None = None
    error: BaseException | None = None


#: ``on_event`` callbacks take one :class:`SchedulerEvent` and return nothing.
EventCallback = Callable[[SchedulerEvent], None]


class EventSubject(Protocol):
    """What an event describes: an execution."""

    @property
    def name(self) -> str: ...

    key: str | None
    priority: Priority
    attempt: int
    _id: int  # the execution's number (joined handles share their execution's)


class EventEmitter:
    """Builds events and hands them to the ``on_event`` callbacks.

    The executor holds one only when callbacks are configured, so an executor without them
    builds no events at all.
    """

    __slots__ = ("_callbacks", "_log", "_loop")

    def __init__(
        self, callbacks: Sequence[EventCallback], loop: asyncio.AbstractEventLoop, log: Any
    ) -> None:
        self._callbacks = tuple(callbacks)
        self._loop = loop
        self._log = log

    def emit(
        self,
        kind: EventKind,
        subject: EventSubject,
        worker_id: int | None = None,
        reason: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Deliver one event to every callback; a raising callback is logged, not raised."""
        event = SchedulerEvent(
            kind=kind,
            task=subject.name,
            key=subject.key,
            priority=subject.priority,
            worker_id=worker_id,
            attempt=subject.attempt,
            time=self._loop.time(),
            execution=subject._id,
            reason=reason,
            error=error,
        )
        for callback in self._callbacks:
            try:
                callback(event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                # Scheduling must go on whatever an observer does. A sync callback cannot
                # receive the loop's cancellation: a CancelledError (or GeneratorExit, or
                # any other BaseException) from one is its own, and is logged like any
                # other error rather than cancelling the step that emitted the event.
                self._log.error(
                    "event_callback_failed",
                    callback=repr(callback),
                    kind=kind,
                    task=event.task,
                    exc_info=exc,
                )
