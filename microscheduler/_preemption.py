"""Preemption: urgent work interrupts Background runs, and every interrupt goes through here.

:class:`Preemption` counts urgent (UI and LastEffort) work, interrupts the Background
runs it displaces (synchronously, in the call that admits it: a loop hop would let a
CPU-bound victim run one more step), and keeps what follows an interrupt: the grace, the
``min_background_slice``, the ``task_interrupt_ignored`` warning and the
``background_quiet_period`` gate. Every interrupt, whatever its reason, goes through
:meth:`Preemption.interrupt`. Its deadlines run on the supervisor task (``_timers``) and
hold executions weakly.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import Any

from ._config import WorkerConfig
from ._cpython import cancel_unattributed
from ._execution import RUNNING, Execution
from ._interrupt import InterruptContext, InterruptReason
from ._lanes import Lanes
from ._logging import log_task
from ._priority import Priority
from ._runtime import Runtime
from ._stats import Counters
from ._timers import Timers

__all__ = ("Preemption",)


class Preemption:
    """Counts urgent work, preempts Background runs for it, and applies every interrupt.

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
        self, *, config: WorkerConfig, lanes: Lanes, timers: Timers, counters: Counters
    ) -> None:
        self.urgent = 0
        self._lanes = lanes
        self._timers = timers
        self._counters = counters
        self._victims: tuple[Any, ...] = ()
        self._gates_background = not config.single_processor and config.preempt_background
        self._grace = config.interrupt_grace
        self._warning = config.interrupt_warning
        self._quiet = config.background_quiet_period
        self._slice = config.min_background_slice
        self._max_preemptions = config.max_preemptions
        self._last_urgent = -math.inf  # loop time of the last urgent admission or end
        self._unended: dict[InterruptContext, list[Any]] = {}  # interrupted runs going on
        self._checking = False
        self._log: Any = None
        self._debug = False
        self._loop: Any = None
        #: Whether runs must know their start on the loop's clock (for slices).
        self.needs_start_time = config.min_background_slice > 0
        #: Whether Background work can ever be held back (else it may always start, and a
        #: worker need not ask on every take: benchmark row bulk, K background workers).
        self.background_may_wait = self._gates_background or self._quiet > 0

    def preempts(self, workers: Sequence[Any]) -> None:
        """The workers whose Background runs urgent work interrupts."""
        self._victims = tuple(workers)

    def start(self, runtime: Runtime) -> None:
        """Bind the executor's runtime (at its start)."""
        self._log = runtime.log
        self._debug = runtime.debug
        self._loop = runtime.loop

    def stop(self) -> None:
        """Forget the interrupted runs being watched (the supervisor has stopped)."""
        self._unended.clear()
        self._checking = False

    # -- urgent work ---------------------------------------------------------------------

    def urgent_admitted(self) -> None:
        """Urgent work was queued (or promoted): preempt the Background runs it displaces."""
        self.urgent += 1
        if self._quiet:
            self._last_urgent = self._timers.now()
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
            self._last_urgent = self._timers.now()
            self._timers.schedule(self._quiet, self._lanes.wake, Priority.BACKGROUND)
        elif self._gates_background:
            self._lanes.wake(Priority.BACKGROUND)

    def may_start_background(self) -> bool:
        """False while Background runs must not start: gated, or within a quiet period."""
        if self.urgent and (self._gates_background or self._quiet):
            return False
        if self._quiet:
            # Within a microsecond, as the supervisor fires deadlines: the wake-up at the
            # period's end must find it over ((t + q) - t can be a hair under q in floats).
            return self._timers.now() - self._last_urgent >= self._quiet - 1e-6
        return True

    def _preempt(self, execution: Execution) -> None:
        limit = self._max_preemptions
        if limit is not None and execution._preemptions >= limit:
            return
        run = execution._run
        if self._slice and run is not None and run.ctx is not None:
            young = run.started + self._slice - self._timers.now()
            if young > 0:
                attempt = run.ctx._attempt
                self._timers.schedule(young, self._slice_over, weakref.ref(execution), attempt)
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

        ``cancel_scope=False`` only signals (the run's own ``Task.timeout`` cancels it).
        Returns True if ``reason`` was applied: a run that already has a reason keeps it,
        unless that reason is a preemption and ``reason`` is stronger.
        """
        run = execution._run
        if run is None or execution._phase != RUNNING:
            return False
        ctx, scope = run.ctx, run.scope
        if ctx is None or scope is None or not ctx._active:
            return False
        current = ctx._reason
        if current is not None and (current != "preempted" or reason == "preempted"):
            return False
        ctx._signal(reason)
        if current is None and self._warning is not None:
            self._watch(execution, ctx)
        if reason == "preempted":
            execution.count_preemption()
            self._counters.preempted += 1
            if self._debug:
                log_task(self._log, "task_preempted", execution)
            if self._grace > 0:
                self._timers.schedule(self._grace, _end_grace, weakref.ref(execution), ctx._attempt)
                return True
        if cancel_scope:
            cancel_unattributed(scope, self._loop, run.host)
        return True

    def _watch(self, execution: Execution, ctx: InterruptContext) -> None:
        """Keep an eye on an interrupted run until it ends (see :meth:`_warn_unended`).

        One check, every ``interrupt_warning`` seconds while any interrupted run is still
        going, serves them all: an interrupt costs a dict entry, not a timer of its own.
        """
        now = self._timers.now()
        assert self._warning is not None
        self._unended[ctx] = [execution, now, now + self._warning]
        if not self._checking:
            self._checking = True
            self._timers.schedule(self._warning, self._warn_unended)

    def run_ended(self, ctx: InterruptContext) -> None:
        """An interrupted run has ended: stop watching it."""
        self._unended.pop(ctx, None)

    def _warn_unended(self) -> None:
        """Interrupted runs still going: say so, and keep saying so while they do."""
        self._checking = False
        now = self._timers.now() + 1e-6
        step = self._warning
        assert step is not None
        for ctx, watched in list(self._unended.items()):
            execution, since, due = watched
            if not ctx._active:
                del self._unended[ctx]
            elif due <= now:
                watched[2] = due + step
                self._log.warning(
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
            self._timers.schedule(max(next_due - self._timers.now(), 0.0), self._warn_unended)


def _run_of(execution: Execution | None, attempt: int) -> InterruptContext | None:
    """The context of ``execution``'s run ``attempt`` while that run is still going."""
    run = execution._run if execution is not None else None
    ctx = run.ctx if run is not None else None
    return ctx if ctx is not None and ctx._attempt == attempt and ctx._active else None


def _end_grace(ref: weakref.ref[Execution], attempt: int) -> None:
    """A preempted run's grace is over: cancel it (on the supervisor task, which anyio's
    cancel message names). Deadlines hold executions weakly: a finished execution is
    freed when its handles are dropped."""
    execution = ref()
    if _run_of(execution, attempt) is not None:
        assert execution is not None
        assert execution._run is not None
        scope = execution._run.scope
        if scope is not None:
            scope.cancel()
