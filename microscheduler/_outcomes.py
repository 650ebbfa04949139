"""How executions end: outcomes, interruption, reruns and their bookkeeping.

The :class:`TaskExecutor` gets these from :class:`Outcomes`, which keeps in one place every
rule of SPEC §3 that decides what a caller receives and how each execution is counted.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from ._exceptions import ExecutorShutdownError, TaskInterruptedError
from ._interrupt import InterruptContext, InterruptReason
from ._lanes import DONE, PREEMPTED, RUNNING
from ._priority import Priority
from ._stats import clock

if TYPE_CHECKING:
    from ._config import WorkerConfig
    from ._emitter import EventEmitter
    from ._lanes import Lane, WorkerGroup
    from ._preemption import Supervisor
    from ._stats import Counters, QueueWaits
    from ._task import TaskHandle
    from ._worker import Worker

__all__ = ("SHUTDOWN_MESSAGE", "Outcomes")

SHUTDOWN_MESSAGE = "executor is shutdown"

Kind = Literal["completed", "failed", "cancelled", "timed_out"]


class Outcomes:
    """The executor's rules for ending executions (a mixin of :class:`TaskExecutor`).

    Invariants:
        * A handle's future is settled at most once (``_reject``/``set_result`` check).
        * Every admitted execution retires exactly once (``_retire``), counted under the
          kind of outcome its caller got.
        * Only a preemption is a soft interrupt: any stronger reason replaces it.
    """

    _config: WorkerConfig
    _loop: asyncio.AbstractEventLoop
    _counters: Counters
    _queue_waits: QueueWaits
    _events: EventEmitter | None
    _lanes: tuple[Lane, Lane, Lane]
    _groups: tuple[WorkerGroup, WorkerGroup, WorkerGroup]
    _supervisor: Supervisor
    _log: Any
    _debug: bool
    _cut: bool
    _outstanding: int
    _drained: asyncio.Future[None] | None

    def _log_task(self, event: str, handle: TaskHandle[Any], **extra: Any) -> None:
        self._log.debug(
            event,
            task=handle.name,
            priority=str(handle._priority),
            attempt=handle._attempt,
            **extra,
        )

    def _reject(self, handle: TaskHandle[Any], error: BaseException) -> None:
        if not handle._future.done():
            handle._future.set_exception(error)

    def _reject_shutdown(self, handle: TaskHandle[Any]) -> None:
        future = handle._future
        if not future.done():
            future.set_exception(ExecutorShutdownError(SHUTDOWN_MESSAGE))
            # An execution ended by shutdown is expected news: a fire-and-forget handle
            # nobody awaits must not log "exception was never retrieved" when collected.
            future.exception()

    def _retire(self, handle: TaskHandle[Any], kind: Kind) -> None:
        """Count an execution's end; each admitted execution retires exactly once."""
        if self._events is not None:
            self._events.ended(handle, kind)
        handle._phase = DONE
        if handle._deadline is not None:
            handle._deadline.cancel()
            handle._deadline = None
        c = self._counters
        if kind == "completed":
            c.completed += 1
        elif kind == "failed":
            c.failed += 1
        elif kind == "cancelled":
            c.cancelled += 1
            if self._debug:
                self._log_task("task_cancelled", handle)
        else:
            c.timed_out += 1
        if handle._priority is not Priority.BACKGROUND:
            self._supervisor.urgent_retired()
        self._outstanding -= 1
        if not self._outstanding and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _withdraw(self, handle: TaskHandle[Any], kind: Kind) -> None:
        rerun = handle._phase == PREEMPTED
        handle._phase = DONE
        self._lanes[handle._priority].discard(rerun=rerun)
        self._retire(handle, kind)

    def _abandon(self, handle: TaskHandle[Any]) -> None:
        """The caller gave up (its future is cancelled): withdraw or interrupt the task."""
        if handle._phase <= PREEMPTED:
            self._withdraw(handle, "cancelled")
        elif handle._phase == RUNNING:
            self._interrupt(handle, "cancelled")

    def _expire(self, handle: TaskHandle[Any], timeout: float) -> None:
        handle._deadline = None
        if handle._future.done():
            return
        handle._future.set_exception(
            TimeoutError(f"task {handle.name!r} did not finish within {timeout}s")
        )
        if handle._phase <= PREEMPTED:
            self._withdraw(handle, "timed_out")
        elif handle._phase == RUNNING:
            self._interrupt(handle, "timeout")

    def _interrupt(self, handle: TaskHandle[Any], reason: InterruptReason) -> None:
        """Ask the running ``handle`` to stop, and cancel its scope (after any grace).

        Only a preemption is soft: a stronger reason replaces it and ends its grace.
        """
        ctx = handle._ctx
        scope = handle._scope
        if ctx is None or scope is None or handle._phase != RUNNING:
            return
        current = ctx._reason
        if current is not None and (current != "preempted" or reason == "preempted"):
            return
        ctx._signal(reason)
        warn_after = self._config.interrupt_warning
        if current is None and warn_after is not None:
            ctx._add_timer(
                self._loop.call_later(warn_after, self._warn_unended, handle, ctx, warn_after)
            )
        if reason == "preempted":
            self._counters.preempted += 1
            if self._debug:
                self._log_task("task_preempted", handle)
            grace = self._config.interrupt_grace
            if grace > 0:
                ctx._add_timer(self._loop.call_later(grace, scope.cancel))
                return
        scope.cancel()

    def _warn_unended(self, handle: TaskHandle[Any], ctx: InterruptContext, waited: float) -> None:
        """An interrupted run is still going: say so, and keep saying so while it does."""
        if not ctx._active:
            return
        self._log.warning(
            "task_interrupt_ignored",
            task=handle.name,
            priority=str(handle._priority),
            attempt=ctx._attempt,
            reason=ctx._reason,
            waited_s=round(waited, 3),
            sync=not handle._task.is_async,
        )
        step = self._config.interrupt_warning
        assert step is not None
        ctx._add_timer(self._loop.call_later(step, self._warn_unended, handle, ctx, waited + step))

    def _abandon_run(self, handle: TaskHandle[Any]) -> None:
        """The worker running ``handle`` is being cancelled: end the execution."""
        self._reject_shutdown(handle)
        self._retire(handle, "cancelled")

    def _finish_run(
        self,
        worker: Worker,
        handle: TaskHandle[Any],
        ctx: InterruptContext,
        ok: bool,
        result: Any,
        error: BaseException | None,
        self_cancelled: bool,
        started: float,
    ) -> None:
        """Apply the rules of SPEC §3 to a run that has fully ended.

        ``ok`` and ``result`` say the compute returned; else ``error`` is what it raised,
        ``self_cancelled`` that it raised CancelledError of its own accord, and neither
        that it was cancelled by its interrupt.
        """
        future = handle._future
        reason = ctx._reason
        if ok and reason is None and not future.done():  # the common case, first
            future.set_result(result)
            if self._debug:
                self._log_completed(worker, handle, started)
            self._retire(handle, "completed")
            return
        if reason == "preempted" and self._events is not None:
            self._events.run_preempted(handle, worker.worker_id)
        if future.done():
            # The caller already has its outcome — it gave up, or its execute(timeout=)
            # expired (only _expire settles a running execution early) — perhaps in the
            # very loop step the run ended, or while the run was winding down.
            self._retire(handle, "cancelled" if future.cancelled() else "timed_out")
            return
        if reason is None or (reason == "preempted" and ctx._no_reschedule):
            if ok:
                future.set_result(result)
                if self._debug:
                    self._log_completed(worker, handle, started)
                self._retire(handle, "completed")
            elif self_cancelled:
                future.cancel()
                self._retire(handle, "cancelled")
            else:
                if error is None:  # a no_reschedule run cancelled before it returned
                    error = TaskInterruptedError(
                        f"task {handle.name!r} was preempted and asked not to be rescheduled"
                    )
                self._reject(handle, error)
                if self._debug:
                    self._log_task("task_failed", handle, error=repr(error))
                self._retire(handle, "failed")
        elif reason == "preempted":
            if self._cut:
                self._reject_shutdown(handle)
                self._retire(handle, "cancelled")
            else:
                self._reschedule(handle)
        elif reason == "timeout":
            timeout = handle._task.timeout
            self._reject(
                handle,
                TimeoutError(
                    f"task {handle.name!r} did not finish within {timeout}s (Task.timeout)"
                ),
            )
            self._retire(handle, "timed_out")
        elif reason == "shutdown":
            self._reject_shutdown(handle)
            self._retire(handle, "cancelled")
        else:  # "cancelled": the caller already has its outcome
            self._retire(handle, "cancelled")

    def _reschedule(self, handle: TaskHandle[Any]) -> None:
        handle._phase = PREEMPTED
        handle._queued_at = clock()
        self._lanes[Priority.BACKGROUND].push_rerun(handle)
        self._counters.rescheduled += 1
        if self._debug:
            self._log_task("task_rescheduled", handle)
        self._groups[Priority.BACKGROUND].wake_one()

    def _log_completed(self, worker: Worker, handle: TaskHandle[Any], started: float) -> None:
        now = clock()
        self._log.debug(
            "task_completed",
            task=handle.name,
            priority=str(handle._priority),
            worker_id=worker.worker_id,
            worker_type=str(worker.worker_type),
            attempt=handle._attempt,
            wait_ms=round((started - handle._queued_at) * 1000.0, 3),
            run_ms=round((now - started) * 1000.0, 3),
        )
