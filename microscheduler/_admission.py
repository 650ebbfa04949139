"""Admission: how work enters the lanes — new executions, joins by key, waiting for room.

:class:`Admission` checks a call (the executor is open, it comes from the executor's loop,
it would not deadlock), then queues a new execution or attaches the caller to the live
execution of the task's key, waits for room in a full lane, and bounds ``execute`` with one
``asyncio.timeout`` over the whole call. It never decides outcomes: that is :class:`Outcomes`'
job; the books are the :class:`Ledger`'s (``admit()``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, NoReturn, TypeVar

from ._config import WorkerConfig
from ._cpython import running_loop_or_none
from ._exceptions import ExecutorNotStartedError, ExecutorShutdownError, QueueFullError
from ._execution import Execution
from ._handle import JoinedHandle, TaskHandle
from ._lanes import Lane, Lanes
from ._ledger import Ledger
from ._outcomes import SHUTDOWN_MESSAGE, Outcomes
from ._preemption import Preemption
from ._priority import Priority
from ._same_work import same_work
from ._snapshots import SnapshotStore
from ._task import Task, check_priority, check_timeout, new_state
from ._worker import Worker

__all__ = ("Admission",)

T = TypeVar("T")

NOT_STARTED_MESSAGE = (
    "executor is not started: use 'async with TaskExecutor(...) as executor:' "
    "or 'await executor.start()' first"
)


class Admission:
    """Admits work into an executor's lanes (see the module docstring).

    Invariants:
        * Nothing is queued or counted unless every check passed.
        * A key has at most one live execution; a submit of a live key joins it (and
          promotes it when more urgent) without waiting for room.
        * A state object is used by at most one live execution at a time.
        * A submitter woken for room it did not get waits again at the head.
    """

    def __init__(
        self,
        *,
        config: WorkerConfig,
        lanes: Lanes,
        ledger: Ledger,
        outcomes: Outcomes,
        preemption: Preemption,
        store: SnapshotStore,
        workers: list[Worker],
    ) -> None:
        self._config = config
        self._lanes = lanes
        self._lane_of = lanes.lanes  # a tuple, indexed on every call (benchmark row: bulk)
        self._ledger = ledger
        self._keys = ledger.keys
        self._outcomes = outcomes
        self._preemption = preemption
        self._store = store
        self._workers = workers
        self._ids = itertools.count(1)
        self._ages = config.max_background_wait is not None
        self.state = "new"  # "new", "running" or "closed", kept by the executor
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker_of_task: dict[asyncio.Task[None], Worker] = {}

    def refuse_other_loop(self, calls: str, example: str) -> NoReturn:
        """Raise the error for ``calls`` made outside the loop that started the executor."""
        closed = self.loop is not None and self.loop.is_closed()
        raise RuntimeError(
            f"this executor runs on another event loop{' (now closed)' if closed else ''} "
            f"(or none is running here): call {calls} from the loop that started it; from "
            f"another thread use asyncio.run_coroutine_threadsafe(executor.{example}, loop)"
        )

    def _lane_for(self, task: Task[Any], priority: Priority | int | None) -> Lane:
        if self.state != "running":
            if self.state == "closed":
                raise ExecutorShutdownError(SHUTDOWN_MESSAGE)
            raise ExecutorNotStartedError(NOT_STARTED_MESSAGE)
        if running_loop_or_none() is not self.loop:
            self.refuse_other_loop("execute()/submit()", "execute(task)")
        if not isinstance(task, Task):
            raise TypeError(f"expected a Task, got {task!r}")
        if priority is None:
            return self._lane_of[task.priority]
        return self._lane_of[check_priority(priority)]

    def _admit(self, task: Task[T], lane: Lane, timeout: float | None) -> TaskHandle[T]:
        """Queue a new execution of ``task`` (or join the live one of its key)."""
        loop = self.loop
        assert loop is not None
        key = task.key
        if key is not None and key in self._keys:
            live = self._keys[key]
            if not same_work(live.task, task):
                raise ValueError(
                    f"key {key!r} is live in this executor for task {live.task.name!r} "
                    f"(compute {live.task.compute!r}); task {task.name!r} (compute "
                    f"{task.compute!r}) cannot join it: a key names one piece of work, so give "
                    f"different work its own key"
                )
            return self._join(live, lane.priority, timeout)
        source = task.initial_state
        shares_state = False
        if source is None:
            state: Any = None  # its fresh NoOpTaskState is made when it first runs
        else:
            state = new_state(task)
            if state is source:
                other = self._ledger.states_in_use.get(id(state))
                if other is not None:
                    raise ValueError(
                        f"task {task.name!r}: its initial_state object is in use by another "
                        f"live execution (of {other.name!r}); give each execution its own "
                        f"state by passing a factory (initial_state=MyState) instead of an "
                        f"instance"
                    )
                shares_state = True
        # The first caller's handle is the execution itself (one object per submit).
        execution = Execution(
            self._outcomes,
            loop,
            task,
            lane.priority,
            state,
            next(self._ids),
            time.perf_counter(),
            self._store if key is not None else None,
        )
        self._ledger.admit(execution, shares_state)
        if timeout is not None:
            execution._submit_deadline = loop.call_later(
                timeout, self._outcomes.expire_submit_deadline, execution, timeout
            )
        if lane.priority is not Priority.BACKGROUND:
            # First: the victims' cancellations are then delivered before the worker this
            # work wakes runs, so a preempted run (a child process being paused) has
            # stopped before the urgent work starts.
            self._preemption.urgent_admitted()
        elif self._ages:
            self._outcomes.start_aging(execution)
        self._lanes.put_new(execution)
        return execution

    def _join(
        self, execution: Execution, priority: Priority, timeout: float | None
    ) -> TaskHandle[Any]:
        """Attach a new handle to the live ``execution`` of the same key."""
        loop = self.loop
        assert loop is not None
        outcomes = self._outcomes
        handle: JoinedHandle[Any] = JoinedHandle(outcomes, execution, loop)
        execution.attach(handle)
        self._ledger.joined(execution)
        if timeout is not None:
            handle._submit_deadline = loop.call_later(
                timeout, outcomes.expire_submit_deadline, handle, timeout
            )
        if priority < execution.priority:
            outcomes.promote(execution, priority, "joined")
        return handle

    async def _admit_when_room(
        self, task: Task[T], priority: Priority | int | None, timeout: float | None
    ) -> TaskHandle[T]:
        lane = self._lane_for(task, priority)
        woken = False
        while lane.full() and (task.key is None or task.key not in self._keys):
            # A submitter woken for room it did not get waits again at the head.
            await lane.wait_for_room(at_head=woken)
            woken = True
            lane = self._lane_for(task, priority)  # the executor may have shut down
        return self._admit(task, lane, timeout)

    async def execute(
        self, task: Task[T], priority: Priority | int | None = None, *, timeout: float | None = None
    ) -> T:
        """See :meth:`TaskExecutor.execute`."""
        lane = self._lane_for(task, priority)
        if asyncio.current_task(self.loop) in self.worker_of_task:  # called from inside a compute
            self._refuse_deadlock(task, lane)
        if timeout is not None:
            return await self._execute_with_timeout(task, priority, check_timeout(timeout))
        if lane.full() and (task.key is None or task.key not in self._keys):
            handle = await self._admit_when_room(task, priority, None)  # (a join needs none)
        else:
            handle = self._admit(task, lane, None)
        return await handle  # a cancelled caller cancels the handle, which detaches it

    async def _execute_with_timeout(
        self, task: Task[T], priority: Priority | int | None, timeout: float | None
    ) -> T:
        """``execute`` bounded by one ``asyncio.timeout`` over the whole call (the wait for
        room included): the ``execute(timeout=)`` timing mechanism."""
        handle: TaskHandle[T] | None = None
        try:
            async with asyncio.timeout(timeout) as execute_timeout:
                try:
                    handle = await self._admit_when_room(task, priority, None)
                    handle._execute_timeout = execute_timeout
                    return await handle
                except asyncio.CancelledError:
                    # Cancelling this caller cancelled the handle, which left detaching to
                    # this call (it has an _execute_timeout): only here is it known whether
                    # it was the deadline.
                    if handle is not None and handle.cancelled():
                        reason: Any = "timeout" if execute_timeout.expired() else "cancelled"
                        self._outcomes.detach(handle, reason)
                    raise
        except TimeoutError:
            if not execute_timeout.expired():
                raise  # the task's own TimeoutError
            if handle is not None and handle.done() and not handle.cancelled():
                # The execution ended in the very loop step the deadline passed: its
                # outcome, already counted, is the caller's one outcome.
                return handle.result()
            raise TimeoutError(f"task {task.name!r} did not finish within {timeout}s") from None

    def _refuse_deadlock(self, task: Task[Any], lane: Lane) -> None:
        """Refuse ``execute`` from a compute when waiting for the new task can never end."""
        current = asyncio.current_task()
        assert current is not None
        worker = self.worker_of_task[current]
        running = worker.current
        name = running.name if running is not None else "?"
        key = task.key
        if running is not None and key is not None and self._keys.get(key) is running:
            raise RuntimeError(
                f"execute({task.name!r}) from inside task {name!r} would deadlock: its key "
                f"{key!r} is the very execution that is running, which would wait for "
                f"itself; use another key, or no key, for the inner work"
            )
        if all(other is worker for other in self._workers if lane in other.lanes):
            raise RuntimeError(
                f"execute({task.name!r}) from inside task {name!r} would deadlock: its "
                f"worker {worker.worker_id} is the only one serving the {lane.priority} lane; "
                f"use submit() without awaiting the handle in the compute, or add workers"
            )
        config = self._config
        if running is None or config.single_processor:
            return
        urgent_target = lane.priority is not Priority.BACKGROUND
        if running.priority is Priority.BACKGROUND and urgent_target and config.preempt_background:
            raise RuntimeError(
                f"execute({task.name!r}) from inside Background task {name!r} can never "
                f"finish: with preempt_background=True the {lane.priority} work preempts the "
                f"very run that waits for it; submit() it without awaiting, or do it outside "
                f"the compute"
            )
        gated = config.preempt_background or config.background_quiet_period > 0
        if running.priority is not Priority.BACKGROUND and not urgent_target and gated:
            raise RuntimeError(
                f"execute({task.name!r}) from inside {running.priority} task {name!r} would "
                f"deadlock: background workers start nothing while urgent work runs "
                f"(preempt_background or background_quiet_period); submit() it without "
                f"awaiting, or do it outside the compute"
            )

    async def submit(
        self, task: Task[T], priority: Priority | int | None = None, *, timeout: float | None = None
    ) -> TaskHandle[T]:
        """See :meth:`TaskExecutor.submit`."""
        timeout = check_timeout(timeout)
        return await self._admit_when_room(task, priority, timeout)

    def submit_nowait(
        self, task: Task[T], priority: Priority | int | None = None, *, timeout: float | None = None
    ) -> TaskHandle[T]:
        """See :meth:`TaskExecutor.submit_nowait`."""
        if timeout is not None:
            timeout = check_timeout(timeout)
        lane = self._lane_for(task, priority)
        if not lane.full() or (task.key is not None and task.key in self._keys):
            return self._admit(task, lane, timeout)  # a join needs no room
        field = _BUFFER_FIELD[lane.priority]
        raise QueueFullError(
            f"the {lane.priority} lane is full ({lane.maxsize} tasks queued); await "
            f"submit() to wait for room, or raise WorkerConfig.{field}"
        )


_BUFFER_FIELD = {
    Priority.UI: "ui_queue_buffer_size",
    Priority.LAST_EFFORT: "last_effort_buffer_size",
    Priority.BACKGROUND: "background_buffer_size",
}
