"""TaskExecutor: admission, outcomes, interruption and the executor's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from types import TracebackType
from typing import Any, TypeVar

import anyio
import structlog

from ._config import WorkerConfig
from ._emitter import EventEmitter
from ._exceptions import (
    ExecutorNotStartedError,
    ExecutorShutdownError,
    QueueFullError,
)
from ._lanes import DONE, Lane, WorkerGroup
from ._outcomes import SHUTDOWN_MESSAGE, Outcomes
from ._preemption import Supervisor
from ._priority import Priority, WorkerType
from ._resources import open_resources
from ._stats import Counters, ExecutorStatistics, QueueWaits, clock
from ._task import Task, TaskHandle, check_priority, check_timeout
from ._worker import Worker

__all__ = ("TaskExecutor",)

T = TypeVar("T")

logger = structlog.get_logger("microscheduler")

_NOT_STARTED_MESSAGE = (
    "executor is not started: use 'async with TaskExecutor(...) as executor:' "
    "or 'await executor.start()' first"
)


class _State(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


def _debug_enabled(log: Any) -> bool:
    check = getattr(log, "is_enabled_for", None) or getattr(log, "isEnabledFor", None)
    if check is None:
        return True
    try:
        return bool(check(logging.DEBUG))
    except Exception:
        return True


class TaskExecutor(Outcomes):
    """Runs tasks on a pool of worker coroutines in three priority lanes.

    ``TaskExecutor(1)`` is single-processor mode: one worker serves the UI, LastEffort and
    Background lanes, in that strict order, and preempts a running Background task as soon
    as UI or LastEffort work arrives. ``TaskExecutor(n)`` with ``n > 1`` runs one UI
    worker (UI and LastEffort lanes) and ``n - 1`` background workers (Background lane).
    :meth:`from_config` takes a full :class:`WorkerConfig`.

    The executor can be constructed anywhere; it binds to the running event loop when it
    starts. Use it as ``async with TaskExecutor(...) as executor:`` (leaving the block
    normally drains the executor, leaving it by an exception does not) or call
    :meth:`start` and :meth:`shutdown` yourself.

    Args:
        processor_count: ``1`` for single-processor mode, ``n > 1`` for one UI worker and
            ``n - 1`` background workers.
        logger: A structlog logger to use instead of ``structlog.get_logger("microscheduler")``.
            Whether debug events are emitted is decided when the executor starts.

    Raises:
        ConfigError: ``processor_count`` is less than 1.
    """

    __module__ = "microscheduler"

    def __init__(self, processor_count: int = 1, *, logger: Any = None) -> None:
        self._setup(WorkerConfig.for_processors(processor_count), logger)

    @classmethod
    def from_config(cls, config: WorkerConfig, *, logger: Any = None) -> TaskExecutor:
        """Build an executor from a :class:`WorkerConfig`."""
        if not isinstance(config, WorkerConfig):
            raise TypeError(f"config must be a WorkerConfig, got {config!r}")
        self = cls.__new__(cls)
        self._setup(config, logger)
        return self

    def _setup(self, config: WorkerConfig, log: Any) -> None:
        self._config = config
        self._log_source = logger if log is None else log
        self._log: Any = self._log_source
        self._debug = True
        self._state = _State.NEW
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._counters = Counters()
        self._queue_waits = QueueWaits()
        on_event = config.on_event
        self._events = None if on_event is None or on_event == () else EventEmitter(on_event)
        self._outstanding = 0  # admitted executions not yet retired
        self._cut = False  # shutdown has cut off all work: nothing is queued or rerun now
        self._drained: asyncio.Future[None] | None = None
        self._draining = False
        self._drain_scope: anyio.CancelScope | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()
        self._worker_of_task: dict[asyncio.Task[None], Worker] = {}  # while started
        self._limiter = anyio.CapacityLimiter(config.total_workers)
        self._lanes = (
            Lane(Priority.UI, config.ui_queue_buffer_size),
            Lane(Priority.LAST_EFFORT, config.last_effort_buffer_size),
            Lane(Priority.BACKGROUND, config.background_buffer_size),
        )
        urgent_group = WorkerGroup()
        if config.single_processor:
            background_group = urgent_group
            self._workers = [Worker(self, 0, WorkerType.UI, self._lanes, urgent_group, gated=False)]
            victims = self._workers
        else:
            background_group = WorkerGroup()
            gated = config.preempt_background
            ui = [
                Worker(self, i, WorkerType.UI, self._lanes[:2], urgent_group, gated=False)
                for i in range(config.ui_workers)
            ]
            background = [
                Worker(
                    self,
                    config.ui_workers + i,
                    WorkerType.BACKGROUND,
                    self._lanes[2:],
                    background_group,
                    gated=gated,
                )
                for i in range(config.background_workers)
            ]
            self._workers = ui + background
            victims = background if gated else []
        self._groups = (urgent_group, urgent_group, background_group)
        self._supervisor = Supervisor(
            victims=victims,
            gates_background=not config.single_processor and config.preempt_background,
            background_group=background_group,
            interrupt=self._interrupt,
        )

    # -- introspection ---------------------------------------------------------------------

    @property
    def config(self) -> WorkerConfig:
        """The configuration the executor runs with."""
        return self._config

    def statistics(self) -> ExecutorStatistics:
        """Return a snapshot of the executor's counters and queue lengths."""
        c = self._counters
        return ExecutorStatistics(
            queued={lane.priority: len(lane) for lane in self._lanes},
            running=c.running,
            completed=c.completed,
            failed=c.failed,
            cancelled=c.cancelled,
            timed_out=c.timed_out,
            preempted=c.preempted,
            rescheduled=c.rescheduled,
            submitted=c.submitted,
            workers=len(self._workers),
            queue_wait=self._queue_waits.snapshot(),
        )

    def __repr__(self) -> str:
        queued = sum(len(lane) for lane in self._lanes)
        return (
            f"<TaskExecutor {self._state.value} workers={len(self._workers)} queued={queued} "
            f"running={self._counters.running}>"
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers, after building each worker's resource.

        Raises:
            RuntimeError: The executor was already started, or was shut down.
            Exception: Whatever the resource factory raised, unchanged; resources already
                built are closed and no worker is left running.
        """
        if self._state is not _State.NEW:
            if self._state in (_State.STOPPING, _State.CLOSED):
                raise RuntimeError(
                    "executor is shut down and cannot be restarted; create a new TaskExecutor"
                )
            raise RuntimeError("executor is already started")
        self._state = _State.STARTING
        loop = asyncio.get_running_loop()
        try:
            resources = await open_resources(
                self._config.resource_factory,
                [(w.worker_id, w.worker_type) for w in self._workers],
                self._stack,
            )
        except BaseException:
            self._state = _State.NEW
            stack, self._stack = self._stack, contextlib.AsyncExitStack()
            try:
                await stack.aclose()
            except Exception:
                self._log_source.exception("resource_close_failed")
            raise
        self._loop = loop
        log = self._log_source
        self._log = log.bind() if hasattr(log, "bind") else log
        self._debug = _debug_enabled(self._log)
        if self._events is not None:
            self._events.bind(loop, self._log)
        for worker, resource in zip(self._workers, resources, strict=True):
            worker.resource = resource
        self._worker_of_task = {
            loop.create_task(worker.run(), name=f"microscheduler-worker-{worker.worker_id}"): worker
            for worker in self._workers
        }
        self._state = _State.RUNNING
        self._log.info(
            "executor_started",
            ui_workers=self._config.ui_workers,
            background_workers=self._config.background_workers,
            single_processor=self._config.single_processor,
        )

    async def __aenter__(self) -> TaskExecutor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown(drain=exc_type is None)

    async def shutdown(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Stop the executor; idempotent.

        From the first call on, ``execute``/``submit`` raise ``ExecutorShutdownError``.
        With ``drain=False`` queued tasks are cancelled and running ones interrupted
        (reason ``"shutdown"``); their callers get ``ExecutorShutdownError``. With
        ``drain=True`` queued and running work completes first, for at most ``timeout``
        seconds, and then the rest goes as with ``drain=False``. A later call with
        ``drain=False`` cuts a drain in progress short.

        When it returns, no worker task is left, every sync compute's thread has returned
        and every resource has been exited. Cancelling the caller does not stop the
        shutdown half-way: it goes on in the background.

        Raises:
            Exception: A resource's ``__aexit__`` raised (all resources are still closed).
        """
        check_timeout(timeout, "shutdown timeout")
        if self._state is _State.NEW:
            self._state = _State.CLOSED
            return
        if self._state is _State.CLOSED:
            return
        if self._state is _State.STARTING:
            raise RuntimeError("cannot shut down while start() is in progress")
        if self._shutdown_task is None:
            self._state = _State.STOPPING
            self._draining = drain
            self._shutdown_task = self._loop.create_task(
                self._shut_down(timeout), name="microscheduler-shutdown"
            )
        elif not drain:
            self._draining = False
            if self._drain_scope is not None:
                self._drain_scope.cancel()
        await asyncio.shield(self._shutdown_task)

    async def _shut_down(self, timeout: float | None) -> None:
        for lane in self._lanes:
            lane.wake_all_putters()
        if self._draining and self._outstanding:
            self._drained = self._loop.create_future()
            with anyio.move_on_after(timeout) as self._drain_scope:
                await self._drained
            self._drain_scope = None
        self._cut = True
        for lane in self._lanes:
            for handle in lane.drain():
                handle._phase = DONE
                self._reject_shutdown(handle)
                self._retire(handle, "cancelled")
        for worker in self._workers:
            if worker.current is not None:
                self._interrupt(worker.current, "shutdown")
        for group in self._groups:
            group.wake_all()
        results = await asyncio.gather(*self._worker_of_task, return_exceptions=True)
        self._worker_of_task = {}
        error: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                self._log.error("worker_crashed", exc_info=result)
        try:
            await self._stack.aclose()
        except Exception as exc:
            self._log.error("resource_close_failed", exc_info=exc)
            error = exc
        self._state = _State.CLOSED
        self._log.info("executor_stopped", **self._counts())
        if error is not None:
            raise error

    def _counts(self) -> dict[str, int]:
        c = self._counters
        return {
            "completed": c.completed,
            "failed": c.failed,
            "cancelled": c.cancelled,
            "timed_out": c.timed_out,
            "preempted": c.preempted,
            "rescheduled": c.rescheduled,
        }

    # -- admission -------------------------------------------------------------------------

    def _lane_for(self, task: Task[Any], priority: Priority | None) -> Lane:
        if self._state is not _State.RUNNING:
            if self._state in (_State.STOPPING, _State.CLOSED):
                raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
            raise ExecutorNotStartedError(_NOT_STARTED_MESSAGE)
        if not isinstance(task, Task):
            raise TypeError(f"expected a Task, got {task!r}")
        if priority is None:
            return self._lanes[task.priority]
        return self._lanes[check_priority(priority)]

    def _enqueue(self, task: Task[T], lane: Lane, timeout: float | None) -> TaskHandle[T]:
        loop = self._loop
        handle = TaskHandle(self, task, lane.priority, loop)
        handle._queued_at = clock()
        lane.push(handle)
        self._counters.submitted += 1
        self._outstanding += 1
        if self._events is not None:
            self._events.submitted(handle)
        if timeout is not None:
            handle._deadline = loop.call_later(timeout, self._expire, handle, timeout)
        if lane.priority is not Priority.BACKGROUND:
            self._supervisor.urgent_admitted()
        self._groups[lane.priority].wake_one()
        return handle

    async def execute(
        self, task: Task[T], priority: Priority | None = None, *, timeout: float | None = None
    ) -> T:
        """Queue ``task`` and return its result.

        Args:
            task: The task to run.
            priority: The lane to queue it in; defaults to ``task.priority``.
            timeout: Limit in seconds on the whole call, queue time included; on expiry
                the task is withdrawn or its run cancelled and ``TimeoutError`` is raised.

        Returns:
            What the task's compute returned (from the run that finally completed, if it
            was preempted and rerun).

        Raises:
            Exception: The task's own exception, unchanged.
            TimeoutError: ``timeout`` or ``Task.timeout`` expired.
            StateRestoreError: The task's state could not be restored before a run.
            TaskInterruptedError: A run that called ``no_reschedule()`` was cancelled.
            ExecutorShutdownError: The executor is, or was meanwhile, shut down.
            ExecutorNotStartedError: The executor has not been started.
            ValueError: ``priority`` is not a :class:`Priority`.

        Cancelling the caller withdraws the task if it is still queued, or cancels its run;
        it is never rerun and the cancellation propagates.
        """
        if self._worker_of_task:
            self._refuse_self_deadlock(task, priority)
        handle = self._enqueue_if_room(task, priority, timeout)
        if handle is None:
            handle = await self.submit(task, priority, timeout=timeout)
        try:
            return await handle._future
        except asyncio.CancelledError:
            if handle._future.cancelled():
                self._abandon(handle)
            raise

    def _refuse_self_deadlock(self, task: Task[Any], priority: Priority | None) -> None:
        """Refuse ``execute`` from a compute whose own worker is the only one that could run
        the new task: that worker would wait for itself forever."""
        current = asyncio.current_task()
        worker = self._worker_of_task.get(current) if current is not None else None
        if worker is None:
            return
        lane = self._lane_for(task, priority)
        if all(other is worker for other in self._workers if lane in other.lanes):
            running = worker.current.name if worker.current is not None else "?"
            raise RuntimeError(
                f"execute({task.name!r}) from inside task {running!r} would deadlock: its "
                f"worker {worker.worker_id} is the only one serving the {lane.priority} lane; "
                f"use submit() without awaiting the handle in the compute, or add workers"
            )

    async def submit(
        self, task: Task[T], priority: Priority | None = None, *, timeout: float | None = None
    ) -> TaskHandle[T]:
        """Queue ``task`` and return its handle, waiting only for room in its lane.

        Arguments and errors are those of :meth:`execute`; ``timeout`` starts counting
        when the task is queued.
        """
        lane = self._lane_for(task, priority)
        timeout = check_timeout(timeout)
        while lane.full():
            await lane.wait_for_room()
            lane = self._lane_for(task, priority)  # the executor may have shut down
        return self._enqueue(task, lane, timeout)

    def _enqueue_if_room(
        self, task: Task[T], priority: Priority | None, timeout: float | None
    ) -> TaskHandle[T] | None:
        lane = self._lane_for(task, priority)
        timeout = check_timeout(timeout)
        return None if lane.full() else self._enqueue(task, lane, timeout)

    def submit_nowait(
        self, task: Task[T], priority: Priority | None = None, *, timeout: float | None = None
    ) -> TaskHandle[T]:
        """Queue ``task`` and return its handle at once.

        Raises:
            QueueFullError: The task's lane is at capacity.
        """
        lane = self._lane_for(task, priority)
        timeout = check_timeout(timeout)
        if lane.full():
            raise QueueFullError(
                f"the {lane.priority} lane is full ({lane.capacity} tasks queued); "
                f"await submit() to wait for room, or raise its buffer size"
            )
        return self._enqueue(task, lane, timeout)
