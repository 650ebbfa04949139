"""Preemption: when urgent work interrupts Background runs, and every timed policy.

Two halves with one owner, the :class:`Supervisor`:

* **At admission, synchronously.** The call that admits UI or LastEffort work interrupts
  the Background runs it displaces before it returns: the victim's ``InterruptContext``
  turns interrupted and its anyio cancel scope is cancelled at once (or after
  ``interrupt_grace``). No loop hop sits between an urgent submit and its victim's
  interruption, so a CPU-bound victim cannot run one more step.
* **In time, from the supervisor task** (``microscheduler-supervisor``, started by
  ``start()`` and gone when ``shutdown()`` returns). It owns every time-based policy: the
  end of an interrupt grace, the ``task_interrupt_ignored`` warning, promotion of aged
  Background work (``max_background_wait``), the end of a ``min_background_slice`` and of a
  ``background_quiet_period``. Deadlines (holding executions weakly) wait in one heap;
  the task sleeps until the earliest and runs what is due.

Every interrupt, whatever its reason, goes through :meth:`Supervisor.interrupt`, and every
rerun through :meth:`Supervisor.reschedule`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ._config import WorkerConfig
from ._events import EventEmitter
from ._execution import PREEMPTED, RUNNING, Execution
from ._idle import IdleWorkers
from ._interrupt import InterruptContext, InterruptReason
from ._lanes import Lane
from ._priority import Priority
from ._stats import Counters
from ._worker import Worker

__all__ = ("Supervisor", "log_task")

_Timer = tuple[float, int, Callable[..., None], tuple[Any, ...]]


class Supervisor:
    """Counts urgent work, preempts Background runs for it, and runs the timed policies.

    Invariants:
        * ``urgent`` counts urgent (UI and LastEffort) executions admitted and not yet
          retired, queued and running alike.
        * Single-processor mode: whenever urgent work is admitted while the one worker
          runs a Background execution, that run is interrupted with reason
          ``"preempted"``. UI and LastEffort runs are never preempted.
        * Multi-worker mode with ``preempt_background``: every Background run is
          interrupted when urgent work is admitted, and background workers start nothing
          while ``urgent > 0``; when it drops to zero they are woken.
        * Multi-worker mode without it: nothing is ever preempted.
        * A run preempted ``max_preemptions`` times is not preempted again; a run younger
          than ``min_background_slice`` is preempted when its slice ends, if urgent work
          still waits then.
        * Only a preemption is a soft interrupt: a stronger reason replaces it and ends
          its grace.
    """

    def __init__(
        self,
        *,
        config: WorkerConfig,
        lanes: tuple[Lane, Lane, Lane],
        gates_background: bool,
        background_idle: IdleWorkers,
        urgent_idle: IdleWorkers,
        counters: Counters,
    ) -> None:
        self.urgent = 0
        self._config = config
        self._lanes = lanes
        self._victims: tuple[Worker, ...] = ()
        self._gates_background = gates_background
        self._background_idle = background_idle
        self._idle = (urgent_idle, urgent_idle, background_idle)
        self._counters = counters
        self._grace = config.interrupt_grace
        self._warning = config.interrupt_warning
        self._quiet = config.background_quiet_period
        self._slice = config.min_background_slice
        self._max_preemptions = config.max_preemptions
        self._last_urgent = -math.inf  # loop time of the last urgent admission or end
        self.events: EventEmitter | None = None
        self.log: Any = None
        self.debug = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: list[_Timer] = []
        self._unended: dict[InterruptContext, list[Any]] = {}  # interrupted runs going on
        self._checking = False
        self._seq = itertools.count()
        self._alarm: asyncio.TimerHandle | None = None
        self._alarm_when = math.inf
        self._wakeup: asyncio.Future[None] | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def preempts(self, workers: Sequence[Worker]) -> None:
        """The workers whose Background runs urgent work interrupts (built after the
        supervisor, since they report to the ledger that holds it)."""
        self._victims = tuple(workers)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, log: Any, debug: bool) -> None:
        """Start the supervisor task on ``loop``."""
        self._loop = loop
        self.log = log
        self.debug = debug
        self._task = loop.create_task(self._run(), name="microscheduler-supervisor")

    async def stop(self) -> None:
        """Stop the supervisor task and drop every pending deadline."""
        self._stopping = True
        self._ring()
        if self._task is not None:
            await self._task
            self._task = None
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None
        self._timers.clear()
        self._unended.clear()
        self._checking = False

    async def _run(self) -> None:
        """Sleep until the earliest deadline, run what is due, repeat until stopped."""
        loop = self._loop
        assert loop is not None
        while not self._stopping:
            self._wakeup = loop.create_future()
            await self._wakeup
            self._wakeup = None
            self._fire_due()

    def _schedule(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        assert loop is not None
        when = loop.time() + delay
        heapq.heappush(self._timers, (when, next(self._seq), action, args))
        if when < self._alarm_when:
            self._set_alarm(when)

    def _set_alarm(self, when: float) -> None:
        assert self._loop is not None
        if self._alarm is not None:
            self._alarm.cancel()
        self._alarm_when = when
        self._alarm = self._loop.call_at(when, self._ring)

    def _ring(self) -> None:
        self._alarm = None
        self._alarm_when = math.inf
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _fire_due(self) -> None:
        assert self._loop is not None
        timers = self._timers
        now = self._loop.time() + 1e-6
        while timers and timers[0][0] <= now:
            _, _, action, args = heapq.heappop(timers)
            try:
                action(*args)
            except Exception as exc:  # a policy must never kill the supervisor
                self.log.error("supervisor_action_failed", action=repr(action), exc_info=exc)
        if timers and timers[0][0] < self._alarm_when:
            self._set_alarm(timers[0][0])

    # -- urgent work ---------------------------------------------------------------------

    def urgent_admitted(self) -> None:
        """Urgent work was queued: preempt the Background runs it displaces."""
        self.urgent += 1
        if self._quiet:
            self._last_urgent = self._now()
        for worker in self._victims:
            execution = worker.current
            if execution is not None and execution.priority is Priority.BACKGROUND:
                self._preempt(execution)

    def urgent_retired(self) -> None:
        """Urgent work ended: release Background work once none is left."""
        self.urgent -= 1
        if self.urgent:
            return
        if self._quiet:
            self._last_urgent = self._now()
            self._schedule(self._quiet, self._background_idle.wake_all)
        elif self._gates_background:
            self._background_idle.wake_all()

    def may_start_background(self) -> bool:
        """False while Background runs must not start: gated, or within a quiet period."""
        if self.urgent and (self._gates_background or self._quiet):
            return False
        if self._quiet:
            return self._now() - self._last_urgent >= self._quiet
        return True

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _preempt(self, execution: Execution) -> None:
        limit = self._max_preemptions
        if limit is not None and execution._preemptions >= limit:
            return
        ctx = execution._ctx
        if self._slice and ctx is not None:
            young = ctx._started + self._slice - self._now()
            if young > 0:
                self._schedule(young, self._slice_over, weakref.ref(execution), ctx._attempt)
                return
        self.interrupt(execution, "preempted")

    def _slice_over(self, ref: weakref.ref[Execution], attempt: int) -> None:
        execution = ref()
        ctx = _run_of(execution, attempt)
        if ctx is not None and ctx._reason is None and self.urgent:
            assert execution is not None
            if execution.priority is Priority.BACKGROUND:
                self.interrupt(execution, "preempted")

    # -- interrupting runs ---------------------------------------------------------------

    def interrupt(
        self, execution: Execution, reason: InterruptReason, *, cancel_scope: bool = True
    ) -> bool:
        """Ask ``execution``'s run to stop, and cancel its scope (after any grace).

        ``cancel_scope=False`` only signals (the run's own ``asyncio.timeout`` cancels it).
        Returns True if ``reason`` was applied: a run that already has a reason keeps it,
        unless that reason is a preemption and ``reason`` is stronger.
        """
        ctx = execution._ctx
        scope = execution._scope
        if ctx is None or scope is None or execution._phase != RUNNING or not ctx._active:
            return False
        current = ctx._reason
        if current is not None and (current != "preempted" or reason == "preempted"):
            return False
        ctx._signal(reason)
        if current is None and self._warning is not None:
            self._watch(execution, ctx)
        if reason == "preempted":
            execution._preemptions += 1
            self._counters.preempted += 1
            if self.debug:
                log_task(self.log, "task_preempted", execution)
            if self._grace > 0:
                self._schedule(self._grace, _end_grace, weakref.ref(execution), ctx._attempt)
                return True
        if cancel_scope:
            scope.cancel()
        return True

    def _watch(self, execution: Execution, ctx: InterruptContext) -> None:
        """Keep an eye on an interrupted run until it ends (see :meth:`_warn_unended`).

        One check, every ``interrupt_warning`` seconds while any interrupted run is still
        going, serves them all: an interrupt costs a dict entry, not a timer of its own.
        """
        now = self._now()
        assert self._warning is not None
        self._unended[ctx] = [execution, now, now + self._warning]
        if not self._checking:
            self._checking = True
            self._schedule(self._warning, self._warn_unended)

    def run_ended(self, ctx: InterruptContext) -> None:
        """An interrupted run has ended: stop watching it."""
        self._unended.pop(ctx, None)

    def _warn_unended(self) -> None:
        """Interrupted runs still going: say so, and keep saying so while they do."""
        self._checking = False
        now = self._now() + 1e-6
        step = self._warning
        assert step is not None
        for ctx, watched in list(self._unended.items()):
            execution, since, due = watched
            if not ctx._active:
                del self._unended[ctx]
            elif due <= now:
                watched[2] = due + step
                self.log.warning(
                    "task_interrupt_ignored",
                    task=execution.name,
                    priority=str(execution.priority),
                    attempt=ctx._attempt,
                    reason=ctx._reason,
                    waited_s=round(now - since, 3),
                    sync=not execution.task.is_async,
                )
        if self._unended:
            self._checking = True
            next_due = min(watched[2] for watched in self._unended.values())
            self._schedule(max(next_due - self._now(), 0.0), self._warn_unended)

    # -- reruns and promotion ------------------------------------------------------------

    def reschedule(self, execution: Execution) -> None:
        """Queue a preempted execution for its rerun, ahead of new Background work."""
        execution._phase = PREEMPTED
        execution._queued_at = time.perf_counter()
        lane = self._lanes[execution.priority]
        lane.put_rerun(execution)
        self._counters.rescheduled += 1
        if self.debug:
            log_task(self.log, "task_rescheduled", execution)
        self._idle[execution.priority].wake_one()

    def queued(self, execution: Execution) -> None:
        """A new Background execution was admitted: start its aging clock.

        With ``max_background_wait`` set, an execution still not done that long after its
        admission (queued, preempted and waiting for a rerun, or running) is promoted to
        LastEffort: it is no longer preempted, and it runs before Background work. Still
        queued a second ``max_background_wait`` later, it is promoted to the UI lane's tail.
        """
        wait = self._config.max_background_wait
        if wait is not None and execution.priority is Priority.BACKGROUND:
            self._schedule(wait, self._age, weakref.ref(execution))

    def _age(self, ref: weakref.ref[Execution]) -> None:
        execution = ref()
        if execution is None or execution.priority is not Priority.BACKGROUND:
            return
        if execution._phase <= RUNNING:
            self.promote(execution, Priority.LAST_EFFORT, "aged")
            wait = self._config.max_background_wait
            assert wait is not None
            self._schedule(wait, self._age_again, ref)

    def _age_again(self, ref: weakref.ref[Execution]) -> None:
        execution = ref()  # still queued in LastEffort (not running, not promoted since)?
        if execution is None or execution._entry is None or execution._phase >= RUNNING:
            return
        if execution.priority is Priority.LAST_EFFORT:
            self.promote(execution, Priority.UI, "aged")

    def promote(self, execution: Execution, priority: Priority, reason: str) -> bool:
        """Move ``execution`` to ``priority``'s lane if that is more urgent.

        A queued or preempted execution changes lanes, keeping its snapshot; a running one
        changes class (a Background run promoted to urgent is no longer preemptible).
        """
        old = execution.priority
        if priority >= old or execution._phase > RUNNING:
            return False
        execution.priority = priority
        self._counters.promoted += 1
        if old is Priority.BACKGROUND:
            self.urgent_admitted()  # it counts as urgent work from now on
        if execution._entry is not None:
            # A promotion is not an admission: it never waits for room, and may take the
            # new lane over its capacity for a while.
            self._lanes[old].withdraw(execution)
            self._lanes[priority].put_promoted(execution)
            self._idle[priority].wake_one()
        if self.debug:
            log_task(self.log, "task_promoted", execution, reason=reason)
        if self.events is not None:
            running = execution._phase == RUNNING
            self.events.emit(
                "promoted", execution, execution._worker_id if running else None, reason
            )
        return True


def _run_of(execution: Execution | None, attempt: int) -> InterruptContext | None:
    """The context of ``execution``'s run ``attempt`` while that run is still going."""
    ctx = execution._ctx if execution is not None else None
    return ctx if ctx is not None and ctx._attempt == attempt and ctx._active else None


def _end_grace(ref: weakref.ref[Execution], attempt: int) -> None:
    execution = ref()
    scope = execution._scope if execution is not None else None
    if _run_of(execution, attempt) is not None and scope is not None:
        scope.cancel()


def log_task(log: Any, event: str, execution: Execution, **extra: Any) -> None:
    """A per-task debug event with the stable keys (task, priority, attempt)."""
    log.debug(
        event,
        task=execution.name,
        priority=str(execution.priority),
        attempt=execution.attempt,
        **extra,
    )
