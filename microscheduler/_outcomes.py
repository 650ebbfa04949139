"""Outcomes: what the callers of an execution get, when a run ends or a caller gives up.

:class:`Outcomes` is the host of workers and the owner of handles (the
:class:`WorkerHost` and :class:`HandleOwner` protocols), so neither needs the executor.
When a run ends it asks :func:`~microscheduler._verdict.decide` for the verdict, applies
it — settling every attached handle through ``Execution.settle_all`` — and has the
:class:`Ledger` retire the execution. Caller-side ends (a cancelled handle, an expired
``submit(timeout=)``, a promotion) come here too.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import anyio

from ._config import WorkerConfig
from ._exceptions import ExecutorShutdownError, TaskInterruptedError
from ._execution import PREEMPTED, RUNNING, Execution
from ._handle import DetachReason, TaskHandle, settle_exception
from ._lanes import Lanes
from ._ledger import Kind, Ledger
from ._logging import log_task
from ._preemption import Preemption
from ._priority import Priority
from ._processes import ProcessPool
from ._run import Run
from ._runtime import Runtime
from ._thrash import ThrashWatch
from ._timers import Timers
from ._verdict import decide
from ._worker import Worker

__all__ = ("SHUTDOWN_MESSAGE", "Outcomes")

SHUTDOWN_MESSAGE = "executor is shutdown"


class Outcomes:
    """Applies the outcome rule, and answers workers and handles (see the module docstring).

    Invariants:
        * A handle's future is settled at most once (``settle_all`` skips settled ones).
        * Every execution that ends is retired through the ledger exactly once.
    """

    def __init__(
        self,
        *,
        config: WorkerConfig,
        lanes: Lanes,
        ledger: Ledger,
        preemption: Preemption,
        timers: Timers,
    ) -> None:
        self._lanes = lanes
        self._ledger = ledger
        self._counters = ledger.counters
        self.preemption = preemption
        self._timers = timers
        self._max_background_wait = config.max_background_wait
        self.limiter = anyio.CapacityLimiter(config.total_workers)
        self.work_cut_off = False  # set by shutdown: nothing is queued or rerun any more
        self.thrash = ThrashWatch(config.min_background_slice)
        self.processes = ProcessPool(config)  # the children of process computes
        self.log: Any = None
        self._debug = False
        self._events: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The worker's host protocol, answered by the part that owns each fact.
        self.may_start_background = preemption.may_start_background
        self.background_may_wait = preemption.background_may_wait
        self.interrupt = preemption.interrupt
        self.run_started = ledger.run_started
        #: Whether runs must note their start on the loop's clock (for slices).
        self.needs_start_time = preemption.needs_start_time

    def start(self, runtime: Runtime) -> None:
        """Bind the executor's runtime (at its start)."""
        self.log = runtime.log
        self._debug = runtime.debug
        self._events = runtime.events
        self._loop = runtime.loop

    # -- the worker's host ---------------------------------------------------------------

    def run_finished(self, worker: Worker, execution: Execution, run: Run) -> None:
        """Apply the outcome rule to a run that has fully ended."""
        ctx = run.ctx
        assert ctx is not None
        reason = ctx._reason
        if reason is not None:
            self.preemption.run_ended(ctx)
            if reason == "preempted" and self._events is not None:
                self._events.emit("preempted", execution, worker.worker_id, "preempted")
        verdict = decide(  # positional, in decide's order (no keyword matching per run)
            run.ok,
            run.error is not None,
            run.self_cancelled,
            reason,
            ctx._no_reschedule,
            execution.abandoned(),
            self.work_cut_off,
        )
        if reason == "preempted" and run.checkpoints == 0 and verdict in ("rerun", "shutdown"):
            self._counters.wasted_runs += 1  # preempted before its first checkpoint
            assert self._loop is not None
            self.thrash.wasted(self._loop.time(), self._counters.wasted_runs, self.log)
        if verdict == "completed":
            execution.settle_all(run.result)
            if self._debug:
                self._ledger.log_completed(execution, run.t0, worker)
            self._ledger.retire(execution, "completed")  # (its child, if any, was not paused)
        elif verdict == "rerun":
            self._rerun(execution)
        elif verdict == "failed" or verdict == "interrupted":
            error = run.error
            if error is None:  # a no_reschedule run cancelled before it returned
                error = TaskInterruptedError(
                    f"task {execution.name!r} was preempted and asked not to be rescheduled"
                )
            execution.settle_all(error=error)
            if self._debug:
                log_task(self.log, "task_failed", execution, error=repr(error))
            self._retire(execution, "failed", error=error)
        elif verdict == "self_cancelled":
            execution.settle_all(cancel=True)
            self._retire(execution, "cancelled")
        elif verdict == "timed_out":
            expired = TimeoutError(
                f"task {execution.name!r} did not finish within "
                f"{execution.task.timeout}s (Task.timeout)"
            )
            execution.settle_all(error=expired)
            self._retire(execution, "timed_out", error=expired)
        elif verdict == "shutdown":
            self.reject_shutdown(execution)
        elif verdict == "gave_up":
            # Every caller already has its outcome: each gave up, or its execute(timeout=)
            # expired, perhaps in the very loop step the run ended.
            self._retire(execution, _gave_up_as(execution))
        else:  # "cancelled": the callers already have their outcome
            self._retire(execution, "cancelled")

    def run_abandoned(self, execution: Execution) -> None:
        """The worker running ``execution`` is being cancelled: end the execution."""
        self.reject_shutdown(execution)

    def retire_unrun(self, execution: Execution) -> None:
        """Every caller gave up before the execution ran (their tasks have not yet run to
        detach): retire it as what the last of them saw."""
        self._retire(execution, _gave_up_as(execution))

    def _rerun(self, execution: Execution) -> None:
        """Queue a preempted execution for its rerun, ahead of new work in its lane."""
        self._ledger.run_stopped()
        execution.requeue()
        self._lanes.put_rerun(execution)
        self._counters.rescheduled += 1
        if self._debug:
            log_task(self.log, "task_rescheduled", execution)

    # -- the handles' owner --------------------------------------------------------------

    def detach(self, handle: TaskHandle[Any], reason: DetachReason) -> None:
        """A caller gave up; end the execution when it was the last one attached."""
        if handle._submit_deadline is not None:
            handle._submit_deadline.cancel()
            handle._submit_deadline = None
        execution = handle._shared
        assert isinstance(execution, Execution)
        if not execution.detach(handle, reason):
            return  # already detached
        if execution.has_attached():
            return
        if execution._phase <= PREEMPTED:
            self._lanes.withdraw(execution)
            self._retire(execution, "cancelled" if reason == "cancelled" else "timed_out")
        elif execution._phase == RUNNING:
            self.preemption.interrupt(execution, reason)

    def expire_submit_deadline(self, handle: TaskHandle[Any], timeout: float) -> None:
        """A ``submit(timeout=)`` deadline passed: that caller gets ``TimeoutError``."""
        handle._submit_deadline = None
        if handle.done():
            return
        settle_exception(
            handle, TimeoutError(f"task {handle.name!r} did not finish within {timeout}s")
        )
        self.detach(handle, "timeout")

    def promote(self, execution: Execution, priority: Priority, reason: str) -> bool:
        """Move ``execution`` to ``priority``'s lane if that is more urgent.

        A queued or preempted execution changes lanes, keeping its snapshot; a running one
        changes class (a Background run promoted to urgent is no longer preemptible).
        """
        old = execution.priority
        if priority >= old or execution._phase > RUNNING:
            return False
        execution.promote_to(priority)
        self._counters.promoted += 1
        if old is Priority.BACKGROUND:
            self.preemption.urgent_admitted()  # it counts as urgent work from now on
        self._lanes.promote(execution, old)
        if self._debug:
            log_task(self.log, "task_promoted", execution, reason=reason)
        if self._events is not None:
            running = execution._phase == RUNNING
            self._events.emit(
                "promoted", execution, execution._worker_id if running else None, reason
            )
        return True

    def start_aging(self, execution: Execution) -> None:
        """A new Background execution was admitted: with ``max_background_wait`` set, one
        still not done that long after its admission (queued, preempted, or running) is
        promoted to LastEffort — no longer preempted, and run before Background work —
        and, still queued a second ``max_background_wait`` later, to the UI lane's tail.
        The deadlines hold the execution weakly."""
        wait = self._max_background_wait
        if wait is not None:
            self._timers.schedule(wait, self._age, weakref.ref(execution))

    def _age(self, ref: weakref.ref[Execution]) -> None:
        execution = ref()
        if execution is None or execution.priority is not Priority.BACKGROUND:
            return
        if execution._phase <= RUNNING:
            self.promote(execution, Priority.LAST_EFFORT, "aged")
            wait = self._max_background_wait
            assert wait is not None
            self._timers.schedule(wait, self._age_again, ref)

    def _age_again(self, ref: weakref.ref[Execution]) -> None:
        execution = ref()  # still queued in LastEffort (not running, not promoted since)?
        if execution is None or execution._entry is None or execution._phase >= RUNNING:
            return
        if execution.priority is Priority.LAST_EFFORT:
            self.promote(execution, Priority.UI, "aged")

    # -- ends ------------------------------------------------------------------------------

    def reject_shutdown(self, execution: Execution) -> None:
        """Give every attached caller ``ExecutorShutdownError`` and retire the execution."""
        attached = [handle for handle in execution.attached() if not handle.done()]
        execution.settle_all(error=ExecutorShutdownError(SHUTDOWN_MESSAGE))
        for handle in attached:
            # An execution ended by shutdown is expected news: a fire-and-forget handle
            # nobody awaits must not log it as an unobserved failure.
            handle._retrieve_quietly()
        self._retire(execution, "cancelled", "shutdown")

    def _retire(
        self,
        execution: Execution,
        kind: Kind,
        reason: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Retire an execution that did not complete; a paused child process it still
        holds (it was preempted, then ended without a rerun) is ended."""
        self._ledger.retire(execution, kind, reason, error)
        if self.processes.paused:
            self.processes.release(execution)


def _gave_up_as(execution: Execution) -> Kind:
    """How to count an execution whose callers all gave up: as the last one saw it."""
    attached = execution.attached()
    if attached:  # they gave up, but have not yet run to detach
        execute_timeout = attached[-1]._execute_timeout
        timed_out = execute_timeout is not None and execute_timeout.expired()
    else:
        timed_out = execution._gave_up == "timeout"
    return "timed_out" if timed_out else "cancelled"
