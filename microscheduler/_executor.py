"""TaskExecutor: admission of work, the executor's lifecycle, and its statistics."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import anyio

from ._admission import Admission
from ._config import WorkerConfig
from ._events import EventEmitter
from ._handle import TaskHandle
from ._lanes import Lanes
from ._ledger import Ledger
from ._logging import debug_enabled, log_worker_ends, logger
from ._outcomes import Outcomes
from ._preemption import Preemption
from ._priority import Priority
from ._resources import open_all
from ._runtime import Runtime
from ._snapshots import MemorySnapshotStore
from ._stats import Counters, ExecutorStatistics
from ._store_bound import BoundedStore
from ._task import Task, check_timeout
from ._timers import Timers
from ._worker import Worker, build_workers

__all__ = ("TaskExecutor",)

T = TypeVar("T")


class _State(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


class TaskExecutor:
    """Runs tasks on a pool of worker coroutines in three priority lanes.

    ``TaskExecutor(1)`` is single-processor mode: one worker serves the UI, LastEffort and
    Background lanes in that strict order, and preempts a Background run as soon as UI or
    LastEffort work arrives. ``TaskExecutor(n)``, ``n > 1``, runs one UI worker (UI and
    LastEffort) and ``n - 1`` background workers. ``TaskExecutor(WorkerConfig(...))`` (or
    :meth:`from_config`) takes a full configuration. Construct it anywhere; it binds to the
    running loop when it starts (``async with``, or :meth:`start` and :meth:`shutdown`).

    Args:
        processor_count: A processor count, or a :class:`WorkerConfig`.
        logger: A structlog logger instead of the library's own (which goes through the
            stdlib logger ``microscheduler``, silent until ``logging`` shows it).
        drain_timeout: Seconds leaving ``async with`` normally lets queued and running work
            finish before the rest is shut down (like aiojobs' ``close_timeout``); ``None``
            waits for all of it. Leaving it by an exception does not drain. A drain cancelled
            (Ctrl-C) ends as ``shutdown()`` does before the cancellation propagates.

    Raises:
        ConfigError: The processor count is less than 1.
        TypeError: ``processor_count`` is neither an int nor a :class:`WorkerConfig`.
    """

    __module__ = "microscheduler"

    def __init__(
        self,
        processor_count: int | WorkerConfig = 1,
        *,
        logger: Any = None,
        drain_timeout: float | None = 10.0,
    ) -> None:
        if isinstance(processor_count, WorkerConfig):
            config = processor_count
        elif isinstance(processor_count, int) and not isinstance(processor_count, bool):
            config = WorkerConfig.for_processors(processor_count)
        else:
            raise TypeError(
                f"TaskExecutor takes a processor count (an int >= 1) or a WorkerConfig, "
                f"got {processor_count!r}"
            )
        self._setup(config, logger, drain_timeout)

    @classmethod
    def from_config(
        cls, config: WorkerConfig, *, logger: Any = None, drain_timeout: float | None = 10.0
    ) -> TaskExecutor:
        """Build an executor from a :class:`WorkerConfig`."""
        if not isinstance(config, WorkerConfig):
            raise TypeError(f"config must be a WorkerConfig, got {config!r}")
        return cls(config, logger=logger, drain_timeout=drain_timeout)

    def _setup(self, config: WorkerConfig, log: Any, drain_timeout: float | None) -> None:
        self._config = config
        self._drain_timeout = check_timeout(drain_timeout, "drain_timeout")
        self._log_source = logger if log is None else log
        self._log: Any = self._log_source
        self._state = _State.NEW
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._draining = False
        self._drain_scope: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._worker_of_task: dict[asyncio.Task[None], Worker] = {}  # while started
        store = config.snapshot_store or MemorySnapshotStore()
        self._store = BoundedStore(store, config.store_timeout)  # every call is bounded
        self._lanes = lanes = Lanes(config)
        self._counters = counters = Counters()
        self._timers = timers = Timers()
        self._preemption = preemption = Preemption(
            config=config, lanes=lanes, timers=timers, counters=counters
        )
        self._ledger = ledger = Ledger(counters, preemption.urgent_retired)
        self._outcomes = outcomes = Outcomes(
            config=config, lanes=lanes, ledger=ledger, preemption=preemption, timers=timers
        )
        self._workers = build_workers(outcomes, config, lanes)
        if config.single_processor:
            preemption.preempts(self._workers)
        elif config.preempt_background:
            preemption.preempts(self._workers[config.ui_workers :])
        self._admission = Admission(
            config=config,
            lanes=lanes,
            ledger=ledger,
            outcomes=outcomes,
            preemption=preemption,
            store=self._store,
            workers=self._workers,
        )

    # -- introspection ---------------------------------------------------------------------

    @property
    def config(self) -> WorkerConfig:
        """The configuration the executor runs with."""
        return self._config

    @property
    def drain_timeout(self) -> float | None:
        """Seconds leaving ``async with`` normally drains for; None for no limit."""
        return self._drain_timeout

    def statistics(self) -> ExecutorStatistics:
        """Return a snapshot of the executor's counters and queue lengths."""
        lanes = self._lanes
        return ExecutorStatistics.of(
            self._counters, lanes.lanes, lanes.idle, len(self._workers), self._ledger.queue_waits
        )

    def __repr__(self) -> str:
        queued = self._lanes.queued()
        return (
            f"<TaskExecutor {self._state.value} workers={len(self._workers)} queued={queued} "
            f"running={self._counters.running}>"
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the snapshot store, build each worker's resource, start the workers.

        Raises:
            RuntimeError: The executor was already started, or was shut down, or there is
                no running asyncio event loop.
            ConfigError: The snapshot store cannot be opened.
            Exception: Whatever the resource factory raised, unchanged; resources already
                built are closed and no worker is left running.
        """
        if self._state is not _State.NEW:
            if self._state in (_State.STOPPING, _State.CLOSED):
                raise RuntimeError(
                    "executor is shut down and cannot be restarted; create a new TaskExecutor"
                )
            raise RuntimeError("executor is already started")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "microscheduler needs an asyncio event loop: start the executor from a "
                "coroutine run by asyncio (anyio's trio backend is not supported)"
            ) from None
        self._state = _State.STARTING
        try:
            resources = await open_all(
                self._store,
                self._config.resource_factory,
                [(w.worker_id, w.worker_type) for w in self._workers],
                self._stack,
                self._log_source,
                owns_store=self._config.snapshot_store is None,
            )
        except BaseException:
            self._state = _State.NEW  # re-startable
            self._stack = contextlib.AsyncExitStack()
            raise
        self._bind(loop)
        for worker, resource in zip(self._workers, resources, strict=True):
            worker.resource = resource
        self._worker_of_task = {
            loop.create_task(worker.run(), name=f"microscheduler-worker-{worker.worker_id}"): worker
            for worker in self._workers
        }
        self._admission.worker_of_task = self._worker_of_task
        self._admission.loop = loop
        self._admission.state = "running"
        self._state = _State.RUNNING
        self._log.info(
            "executor_started",
            ui_workers=self._config.ui_workers,
            background_workers=self._config.background_workers,
            single_processor=self._config.single_processor,
        )

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Build the runtime once and bind every part that needs it."""
        self._loop = loop
        log = self._log_source
        self._log = log.bind() if hasattr(log, "bind") else log
        callbacks = self._config.event_callbacks
        events = EventEmitter(callbacks, loop, self._log) if callbacks else None
        runtime = Runtime(loop=loop, log=self._log, debug=debug_enabled(self._log), events=events)
        self._ledger.start(runtime)
        self._preemption.start(runtime)
        self._outcomes.start(runtime)
        self._timers.start(runtime)

    async def __aenter__(self) -> TaskExecutor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.shutdown(drain=exc_type is None, timeout=self._drain_timeout)
        except asyncio.CancelledError:
            # Ctrl-C under asyncio.run: end as shutdown() does (runs interrupted with reason
            # "shutdown", waited for within drain_timeout) before asyncio.run cancels them.
            task = self._shutdown_task
            if task is not None:
                self._draining = False
                if self._drain_scope is not None:
                    self._drain_scope.cancel()
                await asyncio.wait((task,), timeout=self._drain_timeout)
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: the caller gets the cancellation
            raise

    async def join(self) -> None:
        """Wait until no work is queued or running (work admitted meanwhile included)."""
        await self._ledger.join()

    async def shutdown(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Stop the executor; idempotent.

        From the first call on, ``execute``/``submit`` raise ``ExecutorShutdownError``.
        With ``drain=False`` queued tasks are cancelled and running ones interrupted
        (reason ``"shutdown"``); their callers get ``ExecutorShutdownError``. With
        ``drain=True`` queued and running work completes first, for at most ``timeout``
        seconds, and then the rest goes as with ``drain=False``. A later call with
        ``drain=False`` cuts a drain in progress short.

        When it returns, no worker or supervisor task and no child process is left, every
        sync compute's thread has returned and every resource has been exited; the default
        snapshot store is closed (a ``snapshot_store`` passed in ``WorkerConfig`` is its
        owner's: left open). Cancelling the caller does not stop the shutdown half-way: it
        goes on in the background.

        Raises:
            RuntimeError: A call from another event loop, or ``drain=True`` from inside a
                compute of this executor (it would wait for itself).
            Exception: A resource's ``__aexit__`` raised (all resources are still closed).
        """
        check_timeout(timeout, "shutdown timeout")
        if self._state is _State.NEW:
            self._state = _State.CLOSED
            self._admission.state = "closed"
            return
        if self._state is _State.CLOSED:
            return
        if self._state is _State.STARTING:
            raise RuntimeError("cannot shut down while start() is in progress")
        assert self._loop is not None
        if asyncio.get_running_loop() is not self._loop:
            self._admission.refuse_other_loop("shutdown()", "shutdown()")
        if drain and asyncio.current_task() in self._worker_of_task:
            raise RuntimeError(
                "shutdown(drain=True) from inside a compute of the same executor would wait "
                "for that compute forever; call shutdown() without drain, or drain from "
                "outside the executor's tasks"
            )
        if self._shutdown_task is None:
            self._state = _State.STOPPING
            self._admission.state = "closed"
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
        outcomes = self._outcomes
        self._lanes.wake_submitters()
        if self._draining and self._ledger.outstanding:
            with anyio.move_on_after(timeout) as self._drain_scope:
                await self._ledger.join()
            self._drain_scope = None
            if self._ledger.outstanding:  # work the caller meant to finish is lost: say so
                self._log.warning(
                    "drain_cut_off", cut_off=self._ledger.outstanding, drain_timeout=timeout
                )
        outcomes.work_cut_off = True
        for execution in self._lanes.drain():
            outcomes.reject_shutdown(execution)
        for worker in self._workers:
            if worker.current is not None:
                outcomes.interrupt(worker.current, "shutdown")
        self._lanes.wake_idle()
        ids = [worker.worker_id for worker in self._worker_of_task.values()]
        results = await asyncio.gather(*self._worker_of_task, return_exceptions=True)
        self._worker_of_task = self._admission.worker_of_task = {}
        log_worker_ends(self._log, ids, results)
        await outcomes.processes.close()  # no child process outlives the executor
        await self._timers.stop()
        self._preemption.stop()
        error: BaseException | None = None
        try:
            await self._stack.aclose()
        except Exception as exc:
            self._log.error("resource_close_failed", exc_info=exc)
            error = exc
        self._state = _State.CLOSED
        self._log.info("executor_stopped", **self._counters.ends())
        if error is not None:
            raise error

    # -- admission -------------------------------------------------------------------------

    def execute(
        self, task: Task[T], priority: Priority | int | None = None, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, T]:
        """Queue ``task`` and return its result: ``result = await executor.execute(task)``.

        Args:
            task: The task to run. If its ``key`` names a live execution, the call joins
                it (promoting it if ``priority`` is more urgent) instead of running it twice.
            priority: The lane; defaults to ``task.priority`` (an int 0-2 is accepted).
            timeout: Limit in seconds on the whole call, the wait for room in a full lane
                and queue time included; on expiry the task is withdrawn or its run
                cancelled and ``TimeoutError`` is raised.

        Returns:
            What the compute returned (in the run that finally completed).

        Raises:
            Exception: The task's own exception, unchanged; or ``TimeoutError``,
                ``StateRestoreError``, ``TaskInterruptedError``, ``ExecutorShutdownError``,
                ``ExecutorNotStartedError``.
            ValueError: A bad ``priority``, or a state object in use by a live execution.
            RuntimeError: Waiting from inside a compute could never end (a deadlock, or
                work that would preempt its waiter), or the call is from another loop.

        Cancelling the caller withdraws the task if it is still queued, or cancels its run;
        it is never rerun and the cancellation propagates.
        """
        return self._admission.execute(task, priority, timeout=timeout)

    def submit(
        self, task: Task[T], priority: Priority | int | None = None, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, TaskHandle[T]]:
        """Queue ``task`` and return its handle, waiting only for room in its lane:
        ``handle = await executor.submit(task)``. Arguments and errors are those of
        :meth:`execute`; ``timeout`` starts counting when the task is queued.
        """
        return self._admission.submit(task, priority, timeout=timeout)

    def submit_nowait(
        self, task: Task[T], priority: Priority | int | None = None, *, timeout: float | None = None
    ) -> TaskHandle[T]:
        """Queue ``task`` and return its handle at once.

        Raises:
            QueueFullError: The task's lane is full; the message names the field to raise.
        """
        return self._admission.submit_nowait(task, priority, timeout=timeout)
