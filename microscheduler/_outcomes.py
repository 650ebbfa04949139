"""How executions end: what each caller receives, and how each execution is counted.

:class:`Outcomes` is the executor's ledger. It keeps the rules that decide a caller's
outcome when a run ends, is withdrawn, times out or is cut off by shutdown; it counts every
execution exactly once; and it is what workers and handles call back into (the
:class:`WorkerHost` and :class:`HandleOwner` protocols), so neither needs the executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any, Literal

import anyio

from ._config import WorkerConfig
from ._events import EventEmitter
from ._exceptions import ExecutorShutdownError, TaskInterruptedError
from ._execution import DONE, PREEMPTED, RUNNING, Execution
from ._handle import (
    DetachReason,
    TaskHandle,
    retrieve_exception,
    settle_cancelled,
    settle_exception,
    settle_result,
)
from ._interrupt import InterruptContext, InterruptReason
from ._lanes import Lane
from ._preemption import Supervisor, log_task
from ._priority import Priority
from ._processes import ProcessPool
from ._stats import Counters, QueueWaits
from ._thrash import ThrashWatch
from ._worker import Worker

__all__ = ("SHUTDOWN_MESSAGE", "Kind", "Outcomes")

SHUTDOWN_MESSAGE = "executor is shutdown"

Kind = Literal["completed", "failed", "cancelled", "timed_out"]


class Outcomes:
    """The executor's ledger: outcomes, counting, and the callbacks of workers and handles.

    Invariants:
        * A handle's future is settled at most once (every settle checks ``done()``).
        * Every admitted execution retires exactly once (:meth:`retire`), counted under
          the kind of outcome its callers got.
        * An execution's key and state object are held from admission until retirement.
    """

    def __init__(
        self,
        *,
        config: WorkerConfig,
        lanes: tuple[Lane, Lane, Lane],
        supervisor: Supervisor,
        counters: Counters,
    ) -> None:
        self._config = config
        self._lanes = lanes
        self.supervisor = supervisor
        self.counters = counters
        self.limiter = anyio.CapacityLimiter(config.total_workers)
        self.processes = ProcessPool(config)  # the children of process computes
        self.work_cut_off = False  # set by shutdown: nothing is queued or rerun any more
        self.outstanding = 0  # admitted executions not yet retired
        self.drained: asyncio.Future[None] | None = None
        self.keys: dict[str, Execution] = {}  # live executions by key
        self.states_in_use: dict[int, Execution] = {}  # id(state object) -> its execution
        self.needs_start_time = config.min_background_slice > 0
        self.thrash = ThrashWatch(config.min_background_slice)
        self.events: EventEmitter | None = None
        self.queue_waits = QueueWaits()
        self.log: Any = None
        self.debug = False
        self.loop: asyncio.AbstractEventLoop | None = None
        # False while Background work must wait (the supervisor's, asked on every take).
        self.may_start_background = supervisor.may_start_background

    # -- the worker's host ---------------------------------------------------------------

    def interrupt(
        self, execution: Execution, reason: InterruptReason, *, cancel_scope: bool = True
    ) -> bool:
        """Interrupt a run (see :meth:`Supervisor.interrupt`)."""
        return self.supervisor.interrupt(execution, reason, cancel_scope=cancel_scope)

    def run_started(self, worker: Worker, execution: Execution) -> None:
        """Count and announce a run that begins on ``worker``."""
        assert self.loop is not None
        assert execution._ctx is not None
        ctx = execution._ctx
        if self.needs_start_time or execution.task.timeout is not None:
            ctx._started = self.loop.time()  # for Task.timeout and min_background_slice
        ctx._t0 = now = time.perf_counter()
        execution._worker_id = worker.worker_id
        self.queue_waits.lanes[execution.priority].append(now - execution._queued_at)
        self.counters.running += 1
        if self.debug:
            log_task(
                self.log,
                "task_started",
                execution,
                worker_id=worker.worker_id,
                worker_type=str(worker.worker_type),
                wait_ms=round((now - execution._queued_at) * 1000.0, 3),
            )
        if self.events is not None:
            kind: Any = "started" if execution.attempt == 1 else "resumed"
            # In the run's own context: the run-context hook documented in _events.
            execution._context.run(self.events.emit, kind, execution, worker.worker_id)

    def run_finished(self, worker: Worker, execution: Execution) -> None:
        """Apply the scheduling rules to a run that has fully ended."""
        self.counters.running -= 1
        ctx = execution._ctx
        assert ctx is not None
        reason = ctx._reason
        if reason is not None:
            self.supervisor.run_ended(ctx)
        if reason == "preempted" and self.events is not None:
            self.events.emit("preempted", execution, worker.worker_id, "preempted")
        if ctx._ok and reason is None and execution._joined is None and not execution.done():
            settle_result(execution, ctx._result)  # the common case, first: one caller
            if self.debug:
                self._log_completed(worker, execution, ctx)
            self.retire(execution, "completed")
            return
        if execution._abandoned():
            # Every caller already has its outcome: each gave up, or its execute(timeout=)
            # expired, perhaps in the very loop step the run ended.
            self.retire(execution, _gave_up_as(execution))
        elif ctx._completes():
            self._resolve(execution, ctx._result)
            if self.debug:
                self._log_completed(worker, execution, ctx)
            self.retire(execution, "completed")
        elif reason is None or (reason == "preempted" and ctx._no_reschedule):
            if ctx._self_cancelled:
                for handle in execution._attached():
                    settle_cancelled(handle)
                self.retire(execution, "cancelled")
            else:
                error = ctx._error
                if error is None:  # a no_reschedule run cancelled before it returned
                    error = TaskInterruptedError(
                        f"task {execution.name!r} was preempted and asked not to be rescheduled"
                    )
                self.fail(execution, error)
                if self.debug:
                    log_task(self.log, "task_failed", execution, error=repr(error))
                self.retire(execution, "failed", error=error)
        elif reason == "preempted":
            if ctx._checkpoints == 0:
                self.counters.wasted_runs += 1
                assert self.loop is not None
                self.thrash.wasted(self.loop.time(), self.counters.wasted_runs, self.log)
            if self.work_cut_off:
                self.reject_shutdown(execution)
                self.retire(execution, "cancelled", "shutdown")
            else:
                self.supervisor.reschedule(execution)
        elif reason == "timeout":
            timeout = execution.task.timeout
            expired = TimeoutError(
                f"task {execution.name!r} did not finish within {timeout}s (Task.timeout)"
            )
            self.fail(execution, expired)
            self.retire(execution, "timed_out", error=expired)
        elif reason == "shutdown":
            self.reject_shutdown(execution)
            self.retire(execution, "cancelled", "shutdown")
        else:  # "cancelled": the callers already have their outcome
            self.retire(execution, "cancelled")

    def run_abandoned(self, execution: Execution) -> None:
        """The worker running ``execution`` is being cancelled: end the execution."""
        self.counters.running -= 1
        self.reject_shutdown(execution)
        self.retire(execution, "cancelled", "shutdown")

    def retire_unrun(self, execution: Execution) -> None:
        """Every caller gave up before the execution ran (their tasks have not yet run to
        detach): retire it as what the last of them saw, a timeout of ``execute`` or a
        cancellation."""
        self.retire(execution, _gave_up_as(execution))

    # -- the handles' owner --------------------------------------------------------------

    def detach(self, handle: TaskHandle[Any], reason: DetachReason) -> None:
        """A caller gave up; end the execution when it was the last one attached."""
        if handle._deadline is not None:
            handle._deadline.cancel()
            handle._deadline = None
        execution = handle._shared
        if not execution._detach(handle):
            return  # already detached
        if execution._has_attached():
            return
        execution._gave_up = reason
        if execution._phase <= PREEMPTED:
            self.withdraw(execution, "cancelled" if reason == "cancelled" else "timed_out")
        elif execution._phase == RUNNING:
            self.supervisor.interrupt(execution, "cancelled" if reason == "cancelled" else reason)

    def promote(self, execution: Execution, priority: Priority, reason: str) -> bool:
        """Move an execution to a more urgent lane (see :meth:`Supervisor.promote`)."""
        return self.supervisor.promote(execution, priority, reason)

    def expire(self, handle: TaskHandle[Any], timeout: float) -> None:
        """A ``submit(timeout=)`` deadline passed: that caller gets ``TimeoutError``."""
        handle._deadline = None
        if handle.done():
            return
        error = TimeoutError(f"task {handle.name!r} did not finish within {timeout}s")
        settle_exception(handle, error)
        self.detach(handle, "timeout")

    # -- settling and counting -----------------------------------------------------------

    def _resolve(self, execution: Execution, result: Any) -> None:
        for handle in execution._attached():
            if not handle.done():
                settle_result(handle, result)

    def fail(self, execution: Execution, error: BaseException) -> None:
        """Give every attached caller ``error``.

        A failure nobody retrieves (a fire-and-forget handle) would otherwise show only as
        asyncio's "exception was never retrieved" at collection, and not at all under a
        filter that hides the debug ``task_failed``: when such a handle is collected, the
        handle logs the failure once, at WARNING, with its traceback
        (``task_failed_unobserved``).
        """
        for handle in execution._attached():
            if not handle.done():
                settle_exception(handle, error)

    def reject_shutdown(self, execution: Execution) -> None:
        """Give every attached caller ``ExecutorShutdownError``."""
        for handle in execution._attached():
            if not handle.done():
                settle_exception(handle, ExecutorShutdownError(SHUTDOWN_MESSAGE))
                # An execution ended by shutdown is expected news: a fire-and-forget
                # handle nobody awaits must not log it as an unobserved failure.
                retrieve_exception(handle)

    def withdraw(self, execution: Execution, kind: Kind) -> None:
        """Take a queued or preempted execution out of its lane and retire it."""
        self._lanes[execution.priority].withdraw(execution)
        self.retire(execution, kind)

    def retire(
        self,
        execution: Execution,
        kind: Kind,
        reason: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Count an execution's end; each admitted execution retires exactly once."""
        execution._phase = DONE
        if execution._deadline is not None:
            execution._deadline.cancel()
            execution._deadline = None
        if execution._joined:
            for handle in execution._joined:
                if handle._deadline is not None:
                    handle._deadline.cancel()
                    handle._deadline = None
        execution._release()  # settled handles need nothing more from the execution
        if self.processes.paused:
            self.processes.release(execution)  # a paused child it still holds is ended
        execution._ctx = None  # the run's context points back at the execution: no cycle
        c = self.counters
        if kind == "completed":
            c.completed += 1
        elif kind == "failed":
            c.failed += 1
        elif kind == "cancelled":
            c.cancelled += 1
            if self.debug:
                log_task(self.log, "task_cancelled", execution)
        else:
            c.timed_out += 1
        if execution.key is not None:
            self.keys.pop(execution.key, None)
        if self.states_in_use:
            self.states_in_use.pop(id(execution._task_state), None)
        # Nothing runs it again: a handle kept for its result keeps no more than that.
        execution._task_state = None
        execution._context = _RELEASED
        if self.events is not None:
            if kind == "cancelled" and reason is None:
                reason = "cancelled"
            # The worker of the last run, even when the execution ended waiting for a
            # rerun (preempted, then cancelled); None only if it never ran.
            self.events.emit(kind, execution, execution._worker_id, reason, error)
        if execution.priority is not Priority.BACKGROUND:
            self.supervisor.urgent_retired()
        self.outstanding -= 1
        if not self.outstanding and self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def _log_completed(self, worker: Worker, execution: Execution, ctx: InterruptContext) -> None:
        now = time.perf_counter()
        log_task(
            self.log,
            "task_completed",
            execution,
            worker_id=worker.worker_id,
            worker_type=str(worker.worker_type),
            wait_ms=round((ctx._t0 - execution._queued_at) * 1000.0, 3),
            run_ms=round((now - ctx._t0) * 1000.0, 3),
        )


# What a retired execution holds instead of its caller's context (released with it).
_RELEASED = contextvars.Context()


def _gave_up_as(execution: Execution) -> Kind:
    """How to count an execution whose callers all gave up: as the last one saw it."""
    attached = execution._attached()
    if attached:  # they gave up, but have not yet run to detach
        within = attached[-1]._within
        timed_out = within is not None and within.expired()
    else:
        timed_out = execution._gave_up == "timeout"
    return "timed_out" if timed_out else "cancelled"
