"""Worker configuration."""

from __future__ import annotations

import dataclasses
import inspect
import math
import pickle
import signal
from collections.abc import Callable
from typing import Literal

from ._events import EventCallback
from ._exceptions import ConfigError
from ._numbers import is_number
from ._priority import WorkerType
from ._snapshots import SnapshotStore

__all__ = ("DEFAULT_PROCESS_PREEMPTION", "ProcessPreemption", "ResourceFactory", "WorkerConfig")

#: Called once per worker at start with ``(worker_id, worker_type)``. It may return a plain
#: object, an awaitable (awaited) or an async or sync context manager (entered for the
#: worker's lifetime, exited at shutdown); an undecorated generator is refused at start.
ResourceFactory = Callable[[int, WorkerType], object]

#: What preempting a process compute does: stop its child (and continue it later), or kill
#: it (and rerun the task from its last snapshot in a fresh child).
ProcessPreemption = Literal["pause", "restart"]

#: ``"pause"`` where the platform can stop a process (it has ``SIGSTOP``), else ``"restart"``.
DEFAULT_PROCESS_PREEMPTION: ProcessPreemption = "pause" if hasattr(signal, "SIGSTOP") else "restart"

_BUFFER_FIELDS = ("ui_queue_buffer_size", "last_effort_buffer_size", "background_buffer_size")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """How many workers an executor runs, how much its lanes hold, and how it preempts.

    A configuration with one worker in total is *single-processor mode*: one worker, id 0,
    of type ``UI``, serves all three lanes and preempts Background runs when UI or
    LastEffort work arrives. Otherwise UI workers (ids ``0..ui_workers-1``) serve the UI and
    LastEffort lanes and background workers (the ids that follow) serve the Background lane.

    Attributes:
        ui_workers: Workers serving the UI and LastEffort lanes.
        background_workers: Workers serving the Background lane.
        ui_queue_buffer_size: Capacity of the UI lane; ``0`` means unbounded.
        last_effort_buffer_size: Capacity of the LastEffort lane; ``0`` means unbounded.
        background_buffer_size: Capacity of the Background lane; ``0`` means unbounded.
            Preempted tasks waiting for their rerun never count against it.
        resource_factory: Builds each worker's resource; see :data:`ResourceFactory`.
            Without one, tasks receive the worker's :class:`WorkerInfo`.
        interrupt_grace: Seconds a preempted run may take to return by itself after
            ``is_interrupted()`` turns True, before it is cancelled.
        preempt_background: With dedicated background workers: preempt Background runs
            while any UI or LastEffort work is queued or running, and start no Background
            work until those lanes are idle.
        interrupt_warning: Seconds an interrupted run may go on before the executor logs
            a ``task_interrupt_ignored`` warning naming the task (repeated at that
            interval while the run goes on); ``None`` turns the warning off. A sync compute
            that never polls ``is_interrupted()``, or a coroutine that swallows its
            cancellation, cannot be stopped: this makes it visible.
        snapshot_store: Where keyed tasks' snapshots are written through (a
            :class:`SnapshotStore`); ``None`` keeps them in a :class:`MemorySnapshotStore`
            of the executor's own.
        on_event: A callable, or a tuple of them, given every :class:`SchedulerEvent`;
            one that raises is logged, never raised into the scheduler.
        max_background_wait: Seconds after its admission at which a Background execution
            still not done is promoted to LastEffort (it is then no longer preempted);
            ``None`` never ages work.
        max_preemptions: How many times one execution may be preempted; after that its
            runs are not preempted again. ``None`` sets no limit.
        background_quiet_period: Seconds Background work waits, after the last urgent
            work ended, before it may start again; ``0`` starts it at once.
        min_background_slice: Seconds a Background run may go on before urgent work
            preempts it (the preemption waits until then, if urgent work still waits);
            ``0`` preempts at once.
        process_initializer: For ``Task(runs_in="process")`` computes: a picklable
            zero-argument callable run once in each worker's child process; what it
            returns is the ``resource`` of every process compute in that child (a loaded
            model, an index). Without one, process computes receive None.
        process_preemption: What preempting a process compute does. ``"pause"`` (the
            default where the platform has ``SIGSTOP``) stops the child at once and
            continues the same run later: nothing is recomputed. ``"restart"`` kills
            the child and reruns the task from its last snapshot in a fresh one (for
            work that must release its memory or its device while preempted).
        store_timeout: Seconds any one call to the snapshot store (``load``, ``save``,
            ``delete``, ``open``, ``close``) may take. A call that outlives it is cancelled
            and the run fails with ``StateRestoreError`` (a load) or ``StateSaveError`` (a
            save) naming ``store_timeout``; so a stuck store can hold neither a worker nor
            ``shutdown()`` for longer than this.

    Raises:
        ConfigError: A count, capacity or grace is out of range.
        TypeError: A field has the wrong type.
    """

    __module__ = "microscheduler"

    ui_workers: int = 1
    background_workers: int = 0
    ui_queue_buffer_size: int = 100
    last_effort_buffer_size: int = 100
    background_buffer_size: int = 100
    resource_factory: ResourceFactory | None = None
    interrupt_grace: float = 0.0
    preempt_background: bool = False
    interrupt_warning: float | None = 5.0
    snapshot_store: SnapshotStore | None = None
    on_event: EventCallback | tuple[EventCallback, ...] | None = None
    max_background_wait: float | None = None
    max_preemptions: int | None = None
    background_quiet_period: float = 0.0
    min_background_slice: float = 0.0
    store_timeout: float = 30.0
    process_initializer: Callable[[], object] | None = None
    process_preemption: ProcessPreemption = DEFAULT_PROCESS_PREEMPTION

    def __post_init__(self) -> None:
        for name in ("ui_workers", "background_workers", *_BUFFER_FIELDS):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {value!r}")
        ui, background = self.ui_workers, self.background_workers
        total = ui + background
        if total <= 0:
            raise ConfigError("total workers cannot be zero")
        if total == 1 and (ui < 0 or background < 0):
            raise ConfigError("worker counts cannot be negative")
        if total > 1 and ui <= 0:
            raise ConfigError(f"ui_workers must be > 0 when total workers > 1, got {ui}")
        if total > 1 and background <= 0:
            raise ConfigError(
                f"background_workers must be > 0 when total workers > 1, got {background}"
            )
        for name in _BUFFER_FIELDS:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} cannot be negative, got {getattr(self, name)}")
        grace = self.interrupt_grace
        if not is_number(grace):
            raise TypeError(f"interrupt_grace must be a number of seconds, got {grace!r}")
        if grace < 0:
            raise ConfigError(f"interrupt_grace cannot be negative, got {grace}")
        if math.isnan(grace):
            raise ConfigError("interrupt_grace must be a number of seconds, got nan")
        warning = self.interrupt_warning
        if warning is not None:
            if not is_number(warning):
                raise TypeError(f"interrupt_warning must be seconds or None, got {warning!r}")
            if not warning > 0:
                raise ConfigError(f"interrupt_warning must be > 0 seconds or None, got {warning}")
        if self.resource_factory is not None and not callable(self.resource_factory):
            raise TypeError(
                f"resource_factory must be callable as (worker_id, worker_type), "
                f"got {self.resource_factory!r}"
            )
        if not isinstance(self.preempt_background, bool):
            raise TypeError(f"preempt_background must be a bool, got {self.preempt_background!r}")
        self._check_store_events_and_starvation_bounds()
        self._check_process_fields()

    def _check_process_fields(self) -> None:
        mode = self.process_preemption
        if mode not in ("pause", "restart"):
            raise ConfigError(f"process_preemption must be 'pause' or 'restart', got {mode!r}")
        if mode == "pause" and not hasattr(signal, "SIGSTOP"):
            raise ConfigError(
                "process_preemption='pause' needs SIGSTOP, which this platform lacks; "
                "use process_preemption='restart'"
            )
        initializer = self.process_initializer
        if initializer is None:
            return
        if not callable(initializer):
            raise TypeError(
                f"process_initializer must be a zero-argument callable, got {initializer!r}"
            )
        try:
            pickle.dumps(initializer)
        except Exception as exc:
            # It travels to each child process: refused here rather than at a first run.
            raise TypeError(
                f"process_initializer must pickle (a module-level def), got {initializer!r}: {exc}"
            ) from exc

    def _check_store_events_and_starvation_bounds(self) -> None:
        store = self.snapshot_store
        if store is not None and not isinstance(store, SnapshotStore):
            raise TypeError(
                f"snapshot_store must be a SnapshotStore (async load, save, delete and close), "
                f"got {store!r}"
            )
        callbacks = self.on_event if isinstance(self.on_event, tuple) else (self.on_event,)
        for callback in callbacks:
            if callback is not None and not callable(callback):
                raise TypeError(
                    f"on_event must be a callable taking a SchedulerEvent, a tuple of them or "
                    f"None, got {self.on_event!r}"
                )
            if _is_async(callback):
                # Never awaited, it would observe nothing (only a RuntimeWarning).
                raise TypeError(
                    f"on_event callback {callback!r} is an async function: callbacks are "
                    f"called synchronously on the event loop and never awaited; use a plain "
                    f"function, and from it schedule async work with "
                    f"asyncio.get_running_loop().create_task(...) (keeping a reference to "
                    f"the task)"
                )
        for name in ("background_quiet_period", "min_background_slice", "max_background_wait"):
            value = getattr(self, name)
            if value is None and name == "max_background_wait":
                continue
            if not is_number(value):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if math.isnan(value) or value < 0:
                raise ConfigError(f"{name} cannot be negative, got {value}")
        bound = self.store_timeout
        if not is_number(bound):
            raise TypeError(f"store_timeout must be a number of seconds, got {bound!r}")
        if not bound > 0:
            raise ConfigError(f"store_timeout must be > 0 seconds, got {bound}")
        limit = self.max_preemptions
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool):
                raise TypeError(f"max_preemptions must be an int or None, got {limit!r}")
            if limit < 0:
                raise ConfigError(f"max_preemptions cannot be negative, got {limit}")

    @property
    def event_callbacks(self) -> tuple[EventCallback, ...]:
        """The ``on_event`` callbacks as a tuple (empty when there are none)."""
        callbacks = self.on_event
        if callbacks is None:
            return ()
        return callbacks if isinstance(callbacks, tuple) else (callbacks,)

    @property
    def total_workers(self) -> int:
        """The number of workers the executor runs."""
        return self.ui_workers + self.background_workers

    @property
    def single_processor(self) -> bool:
        """True when one worker serves all three lanes (one worker in total)."""
        return self.total_workers == 1

    @classmethod
    def for_processors(cls, processor_count: int) -> WorkerConfig:
        """The configuration ``TaskExecutor(processor_count)`` uses.

        ``1`` is single-processor mode; ``n > 1`` is one UI worker and ``n - 1`` background
        workers.

        Raises:
            ConfigError: ``processor_count`` is less than 1.
            TypeError: ``processor_count`` is not an int.
        """
        if not isinstance(processor_count, int) or isinstance(processor_count, bool):
            raise TypeError(f"processor_count must be an int, got {processor_count!r}")
        if processor_count < 1:
            # "zero" for a negative count would send the reader looking for the wrong bug.
            if processor_count == 0:
                problem = "total workers cannot be zero"
            else:
                problem = "worker counts cannot be negative"
            raise ConfigError(f"{problem}: processor_count must be >= 1, got {processor_count}")
        return cls(ui_workers=1, background_workers=processor_count - 1)


def _is_async(callback: object) -> bool:
    """True for an async function, a partial of one, or an object whose ``__call__`` is."""
    call = type(callback).__call__  # every callable type has one
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(call)
