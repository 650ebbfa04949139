"""Workers: coroutines that take executions from their lanes and run them one at a time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from types import CoroutineType
from typing import Any, Protocol

import anyio
import anyio.to_thread

from ._config import WorkerConfig
from ._context import NOT_RUN, InContext, RaisedInThread, call_sync
from ._execution import Execution
from ._interrupt import InterruptReason
from ._lanes import Lane, Lanes
from ._parking import ParkingLot
from ._priority import Priority, WorkerType
from ._processes import ProcessPool
from ._run import Run
from ._verdict import completes

__all__ = ("Worker", "WorkerHost", "build_workers")


class WorkerHost(Protocol):
    """What a worker needs from the executor that owns it."""

    limiter: anyio.CapacityLimiter
    log: Any
    processes: ProcessPool

    @property
    def work_cut_off(self) -> bool:
        """True once shutdown has cut off all work."""
        ...

    def may_start_background(self) -> bool:
        """False while Background work must not start (gated or in a quiet period)."""
        ...

    @property
    def background_may_wait(self) -> bool:
        """False when Background work may always start (nothing gates it): a worker then
        need not ask :meth:`may_start_background` on every take."""
        ...

    @property
    def needs_start_time(self) -> bool:
        """True when every run must note its start on the loop's clock (for slices)."""
        ...

    def run_started(self, worker: Worker, execution: Execution, run: Run) -> None:
        """A run began on ``worker``; ``run`` is its record."""
        ...

    def run_finished(self, worker: Worker, execution: Execution, run: Run) -> None:
        """A run has fully ended; how is in its record, ``run``."""
        ...

    def run_abandoned(self, execution: Execution) -> None:
        """The worker task itself is being cancelled while running ``execution``."""
        ...

    def retire_unrun(self, execution: Execution) -> None:
        """Every caller of ``execution`` gave up before it ran: retire it, never run."""
        ...

    def interrupt(
        self, execution: Execution, reason: InterruptReason, *, cancel_scope: bool = True
    ) -> bool:
        """Interrupt ``execution``'s run; True if ``reason`` was applied."""
        ...


class Worker:
    """One worker coroutine: serves a fixed list of lanes, most urgent first.

    Invariants of :meth:`run`:
        * A worker runs at most one compute at a time; ``current`` is the execution it runs.
        * It always takes from the most urgent non-empty lane it serves (strict priority),
          and takes nothing from the Background lane while its host says Background work
          must wait (``preempt_background`` gating, a quiet period).
        * A run ended by preemption, caller cancel, timeout or shutdown — a sync compute's
          thread included — has fully finished before the worker takes anything else, so
          an execution never runs twice at once and preempting work never overlaps its
          victim.
        * A compute's exception, of any kind but ``KeyboardInterrupt``/``SystemExit``,
          never escapes the worker; only a cancellation of the worker task itself does, and
          then the execution it held still gets an outcome.
        * Every compute runs in its execution's context (a copy of the submitter's).
        * The worker returns once its host is cut off (shutdown) and its lanes hold
          nothing more for it.
    """

    __slots__ = (
        "_host",
        "current",
        "idle",
        "lanes",
        "record",
        "resource",
        "worker_id",
        "worker_type",
    )

    def __init__(
        self,
        host: WorkerHost,
        worker_id: int,
        worker_type: WorkerType,
        lanes: Sequence[Lane],
        idle: ParkingLot,
    ) -> None:
        self._host = host
        self.worker_id = worker_id
        self.worker_type = worker_type
        self.lanes = tuple(lanes)
        self.idle = idle  # where it parks while idle
        self.resource: object = None
        self.current: Execution | None = None
        self.record = Run()  # the record of its current (or last) run

    def __repr__(self) -> str:
        doing = f"running {self.current.name!r}" if self.current is not None else "idle"
        return f"<Worker {self.worker_id} {self.worker_type} {doing}>"

    def _take(self) -> Execution | None:
        for lane in self.lanes:
            if lane._new or lane._reruns:  # the lane's live entries, read without a call
                if (
                    lane.priority is Priority.BACKGROUND
                    and self._host.background_may_wait
                    and not self._host.may_start_background()
                ):
                    return None
                return lane.take()
        return None

    async def run(self) -> None:
        """Take and run executions until the host shuts down.

        Runs happen inside a cancel scope that the worker keeps open across runs, so an
        uninterrupted run costs no scope of its own. Interrupting a run cancels that scope;
        the worker then leaves it (the scope swallows only its own cancellation) and opens
        a fresh one before it takes anything else. That fresh scope is built beforehand,
        after an uninterrupted run, so building it (about 2 us in anyio) is not part of
        the latency of the urgent work that interrupted the run.
        """
        host = self._host
        self.record.host = asyncio.current_task()
        spare: anyio.CancelScope | None = anyio.CancelScope()
        while True:
            scope = spare if spare is not None else anyio.CancelScope()
            spare = None
            try:
                with scope:
                    while True:
                        execution = self._take()
                        if execution is None:
                            if host.work_cut_off:
                                return
                            await self.idle.park()
                            continue
                        if execution.abandoned():
                            # Its callers' tasks were cancelled (which cancels their
                            # futures at once) but have not run yet to detach: retire it
                            # here, never run.
                            host.retire_unrun(execution)
                            continue
                        try:
                            await self._run_one(execution, scope)
                        except GeneratorExit:
                            # asyncio throws a GeneratorExit that the run awaited (a
                            # future's exception, as asyncio.to_thread gives) into this
                            # outermost frame, after closing the run's frames, which gave
                            # the run its outcome. Only a coroutine being destroyed has no
                            # running task of its own: that close goes on.
                            if self.current is not None or not _in_own_task():
                                raise
                        if scope.cancel_called:
                            # The run was interrupted, and perhaps ended before the
                            # cancellation reached it: this scope is spent either way.
                            break
                        if spare is None:
                            spare = anyio.CancelScope()
            except asyncio.CancelledError:
                if _cancelling():
                    raise  # the worker task itself is being cancelled
                # A cancellation of a run that its scope did not recognise as its own.
                # The run already has its outcome; a worker that ended here would leave
                # every later call hanging, so it says so and goes on serving.
                host.log.error("worker_stray_cancellation", worker_id=self.worker_id)

    async def _run_one(self, execution: Execution, scope: anyio.CancelScope) -> None:
        host = self._host
        run = self.record
        ctx = execution.begin_run(self.worker_id, scope, run)
        task = execution.task
        if task.timeout is not None or host.needs_start_time:
            run.started = asyncio.get_running_loop().time()  # Task.timeout, slices
        self.current = execution
        host.run_started(self, execution, run)
        abandoned = False
        try:
            if run.prepares_state:
                await execution.prepare_state(run)
            if run.error is None:
                timeout = task.timeout
                if timeout is not None:
                    result = await self._compute_under_task_timeout(execution, run, timeout)
                elif task.is_async:
                    # _compute's async branch, inline: the common path, one frame less
                    # (benchmark rows: overhead, bulk)
                    context = execution._context
                    awaitable = context.run(task.compute, self.resource, execution._task_state, ctx)
                    if type(awaitable) is CoroutineType:
                        try:
                            first = context.run(awaitable.send, None)
                        except StopIteration as stop:
                            result = stop.value
                        else:
                            result = await InContext(awaitable, context, first)
                    else:
                        result = await InContext(awaitable, context)
                else:
                    result = await self._compute(execution, run)
                if result is not NOT_RUN:
                    run.ok = True
                    run.result = result
        except asyncio.CancelledError:
            if scope.cancel_called:
                raise  # the interrupt: finished below, swallowed by the worker's scope
            if _cancelling():
                # The worker task itself is being cancelled (the loop is closing): the run
                # is over and its callers must still get an outcome.
                abandoned = True
                raise
            # The compute raised CancelledError of its own accord (e.g. it awaited
            # something that was cancelled); its callers see a cancellation.
            run.self_cancelled = True
        except (KeyboardInterrupt, SystemExit):  # let them stop the loop
            abandoned = True
            raise
        except BaseException as exc:
            if not (ctx._reason == "timeout" and isinstance(exc, TimeoutError)):
                run.error = exc
        finally:
            execution.end_run()
            self.current = None
            if abandoned:
                host.run_abandoned(execution)
            else:
                if run.keyed and completes(run.ok, ctx._reason, ctx._no_reschedule):
                    await execution.forget_stored_snapshot(host.log)
                host.run_finished(self, execution, run)
            # The record is kept for the next run: it lets go of this one's execution.
            run.ctx = run.result = run.error = None

    async def _compute(self, execution: Execution, run: Run) -> Any:
        """The compute's general path: a sync compute in a thread, or an async one under a
        timeout. (An async compute without one runs inline in :meth:`_run_one`.)"""
        task = execution.task
        ctx = run.ctx
        assert ctx is not None
        if task.runs_in == "process":  # the one hook of process computes
            return await self._host.processes.run(execution, ctx, self._host.log)
        if task.is_async:
            awaitable = execution._context.run(
                task.compute, self.resource, execution._task_state, ctx
            )
            return await InContext(awaitable, execution._context)
        result = await anyio.to_thread.run_sync(
            execution._context.run,
            call_sync,
            task.compute,
            self.resource,
            execution._task_state,
            ctx,
            limiter=self._host.limiter,
        )
        if type(result) is RaisedInThread:
            raise result.error
        if inspect.isawaitable(result):
            result = await InContext(result, execution._context)
        return result

    async def _compute_under_task_timeout(
        self, execution: Execution, run: Run, timeout: float
    ) -> Any:
        """Run the compute under ``Task.timeout``: a fresh ``asyncio.timeout`` for this run.

        At the deadline the run's context turns interrupted (reason ``"timeout"``) first,
        then the timeout cancels the run, so a compute (or a sync compute's thread) sees
        why it is stopped. A sync compute's thread cannot be cancelled: its run is awaited
        through an inner task, and a timed-out run still waits for its thread to return.
        """
        loop = asyncio.get_running_loop()
        ctx = run.ctx
        assert ctx is not None
        async with asyncio.timeout(None) as task_timeout:

            def expire() -> None:
                scope = run.scope
                if ctx._active and self._host.interrupt(execution, "timeout", cancel_scope=False):
                    if scope is not None and scope.cancel_called:
                        # The run is already being cancelled by its scope (it was
                        # preempted): a second, native cancellation could land in the
                        # same step and fold into it, hiding the scope's (the task would
                        # then be cancelled for good). The scope's ends it as a timeout.
                        return
                    task_timeout.reschedule(loop.time())

            deadline = loop.call_at(run.started + timeout, expire)
            try:
                if execution.task.is_async:
                    return await self._compute(execution, run)
                inner = asyncio.ensure_future(self._compute(execution, run))
                try:
                    return await asyncio.shield(inner)
                except asyncio.CancelledError:
                    with anyio.CancelScope(shield=True):
                        await asyncio.wait((inner,))
                    if not inner.cancelled():
                        inner.exception()  # retrieved: the run's outcome is its interrupt
                    raise
            finally:
                deadline.cancel()


def build_workers(host: WorkerHost, config: WorkerConfig, lanes: Lanes) -> list[Worker]:
    """The workers of a configuration, in worker-id order.

    Single-processor mode: one UI worker, id 0, serving all three lanes. Otherwise UI
    workers (ids ``0..ui_workers-1``) serve UI and LastEffort, background workers (the ids
    that follow) serve Background.
    """
    all_lanes = tuple(lanes)
    urgent_idle, background_idle = lanes.idle[Priority.UI], lanes.idle[Priority.BACKGROUND]
    if config.single_processor:
        return [Worker(host, 0, WorkerType.UI, all_lanes, urgent_idle)]
    ui = [
        Worker(host, i, WorkerType.UI, all_lanes[:2], urgent_idle) for i in range(config.ui_workers)
    ]
    first = config.ui_workers
    background = [
        Worker(host, first + i, WorkerType.BACKGROUND, all_lanes[2:], background_idle)
        for i in range(config.background_workers)
    ]
    return ui + background


def _cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _in_own_task() -> bool:
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no running loop: the coroutine is being closed from outside
        return False
