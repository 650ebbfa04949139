"""Executions: one admitted piece of work, shared by every handle attached to it.

An execution moves through four phases, each change through one of its own verbs::

    QUEUED ──begin_run──► RUNNING ──release──► DONE
       ▲                    │
       │                 requeue
       │                    ▼
       └─────────────── PREEMPTED      (waiting, with its latest snapshot, to be rerun)

(``release`` also ends a QUEUED or PREEMPTED execution that is withdrawn or cut off.) A
lane holds an execution while it is QUEUED or PREEMPTED; a worker while it is RUNNING;
DONE is final. Callers see an execution through handles: the execution itself is the
first caller's :class:`TaskHandle`, and each submit that joins it by key attaches a
:class:`JoinedHandle`.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

import anyio

from ._exceptions import StateRestoreError
from ._handle import JoinedHandle, TaskHandle
from ._interrupt import InterruptContext
from ._priority import Priority
from ._run import Run
from ._snapshots import SnapshotStore
from ._state import NoOpTaskState, TaskState
from ._task import Task
from ._verdict import completes

__all__ = ("DONE", "PREEMPTED", "QUEUED", "RUNNING", "Execution")

QUEUED = 0
PREEMPTED = 1
RUNNING = 2
DONE = 3

_future_init = asyncio.Future.__init__
# The future's own setters (a handle refuses them from callers); settle_all calls them
# directly, without a helper per handle (benchmark rows: bulk, overhead).
_set_result = asyncio.Future.set_result
_set_exception = asyncio.Future.set_exception
_cancel = asyncio.Future.cancel
_copy_context = contextvars.copy_context
_perf_counter = time.perf_counter
# What a released execution holds instead of its caller's context.
_RELEASED = contextvars.Context()


class Execution(TaskHandle[Any]):
    """One admitted execution of a task (see the module docstring for its phases).

    The execution is itself the future of its first caller, so admitting work costs one
    object, not an execution plus a handle plus a future. ``task``, ``key``, ``priority``,
    ``attempt`` and ``snapshot`` are the attributes a handle documents; the rest is the
    scheduler's, underscored so that a handle shows callers only its API (as asyncio's
    own modules do). They are the package's protocol with an execution: other modules
    read them (``_phase``, ``_run``, ``_worker_id``, ``_queued_at``, ``_context``,
    ``_task_state``, ``_preemptions``, ``_joined``, ``_first_attached``, ``_gave_up``,
    ``_id``), and they change only through the verbs below — except ``_entry``, which
    belongs to the lane that holds the execution.

    Invariants:
        * ``_entry`` is the sequence number that represents it in its lane while QUEUED or
          PREEMPTED, else None; any other entry for it in a lane is dead (the lane keeps it).
        * ``_run`` is its worker's run record while RUNNING (until the run's outcome is
          applied), else None.
        * The attached handles (:meth:`attached`) are those whose callers still wait:
          the execution itself while ``_first_attached``, plus any that joined by key,
          in ``_joined``. (One caller, the common case, costs no list, and no handle
          refers to itself, so a finished execution is freed by reference counting.)
        * ``snapshot`` is the latest snapshot (``saved_state``, a ``save_state`` of an
          earlier run, or a stored one loaded for a keyed task's first run).
    """

    __slots__ = (
        "_context",
        "_entry",
        "_first_attached",
        "_gave_up",
        "_id",
        "_joined",
        "_loaded",
        "_phase",
        "_preemptions",
        "_queued_at",
        "_run",
        "_store",
        "_task_state",
        "_worker_id",
        "attempt",
        "key",
        "priority",
        "snapshot",
        "task",
    )

    task: Task[Any]  # a slot here, a read-only property on TaskHandle
    key: str | None
    priority: Priority
    attempt: int
    snapshot: bytes | None

    def __init__(
        self,
        owner: Any,
        loop: asyncio.AbstractEventLoop,
        task: Task[Any],
        priority: Priority,
        state: TaskState | None,
        ident: int,
        queued_at: float,
        store: SnapshotStore | None,
    ) -> None:
        _future_init(self, loop=loop)
        self._owner = owner  # the executor's HandleOwner
        self._submit_deadline: asyncio.TimerHandle | None = None
        self._execute_timeout: asyncio.Timeout | None = None
        self.task = task
        self.key = task.key
        self.priority = priority
        self.attempt = 0
        self.snapshot = task.saved_state
        self._task_state = state  # None until the first run for a task without state
        self._id = ident
        self._queued_at = queued_at  # time.perf_counter() when it last entered a lane
        self._store = store  # only for keyed tasks
        self._phase = QUEUED
        self._loaded = task.saved_state is not None or store is None
        self._preemptions = 0
        self._worker_id: int | None = None  # the worker of the current or last run
        self._run: Run | None = None
        self._entry: int | None = None  # its sequence number in its lane, while queued
        self._first_attached = True  # the caller that created it still waits
        self._joined: list[JoinedHandle[Any]] | None = None  # callers that joined by key
        self._gave_up: str | None = None  # how the last attached caller left
        # Computes run in a copy of the submitting caller's context, as create_task does.
        self._context = _copy_context()

    # -- what a handle reads ---------------------------------------------------------------

    @property
    def _shared(self) -> Execution:
        return self

    @property
    def phase(self) -> int:
        """QUEUED, PREEMPTED, RUNNING or DONE."""
        return self._phase

    @property
    def name(self) -> str:
        """The task's name."""
        return self.task.name

    # -- the verbs of its phases -----------------------------------------------------------

    def begin_run(self, worker_id: int, scope: Any, run: Run) -> InterruptContext:
        """QUEUED/PREEMPTED -> RUNNING: start a run on a worker, inside ``scope``, recorded
        in the worker's ``run``; returns the run's interrupt context."""
        self.attempt = attempt = self.attempt + 1
        if self._task_state is None:  # a task without state: its fresh NoOpTaskState
            self._task_state = NoOpTaskState()  # (made at its first run, not queued)
        store = self._store
        ctx = InterruptContext(
            self, attempt, self.task.initial_state is not None, store is not None
        )
        run.ctx = ctx
        run.scope = scope
        run.started = 0.0
        run.t0 = _perf_counter()
        run.ok = run.self_cancelled = False
        run.result = run.error = None
        run.checkpoints = 0
        if store is not None:
            run.keyed = True
            run.prepares_state = not self._loaded or self.snapshot is not None
        else:
            run.keyed = False
            run.prepares_state = self.snapshot is not None
        self._run = run
        self._phase = RUNNING
        self._worker_id = worker_id
        return ctx

    def end_run(self) -> None:
        """The run's compute has ended: its context refuses further saves. A run that
        would complete although a keyed save was never awaited fails instead
        (``StateSaveError``): its result would hide that the snapshot is not durable."""
        run = self._run
        assert run is not None
        ctx = run.ctx
        assert ctx is not None
        unsaved = ctx._end()
        run.scope = None
        if unsaved is not None and completes(run.ok, ctx._reason, ctx._no_reschedule):
            run.ok = False
            run.error = unsaved

    def promote_to(self, priority: Priority) -> None:
        """Move to ``priority``'s class (the lanes move its entry, if it has one)."""
        self.priority = priority

    def count_preemption(self) -> int:
        """Count one more preemption of this execution; returns how many so far."""
        self._preemptions += 1
        return self._preemptions

    def requeue(self) -> None:
        """RUNNING -> PREEMPTED: going back to its lane for a rerun."""
        self._run = None  # the record is its worker's, for its next run
        self._phase = PREEMPTED
        self._queued_at = _perf_counter()

    def release(self) -> None:
        """-> DONE: let go of everything a finished execution needs no more.

        Its handles (settled already), their ``submit(timeout=)`` timers, the run's
        record (whose context points back at the execution), its state object and its
        caller's context: a handle kept for its result keeps no more than that.
        """
        self._phase = DONE
        if self._submit_deadline is not None:
            self._submit_deadline.cancel()
            self._submit_deadline = None
        joined = self._joined
        if joined:
            for handle in joined:
                if handle._submit_deadline is not None:
                    handle._submit_deadline.cancel()
                    handle._submit_deadline = None
        self._first_attached = False
        self._joined = None
        self._run = None
        self._task_state = None
        self._context = _RELEASED

    # -- its state across runs -------------------------------------------------------------

    async def prepare_state(self, run: Run) -> None:
        """Before a run: a keyed execution's first run loads its stored snapshot, and a
        snapshot, if there is one, is restored into the state. A failure becomes the run's
        error (``StateRestoreError``, the cause chained), and the compute is not called."""
        if not self._loaded:
            store, key = self._store, self.key
            assert store is not None
            assert key is not None
            # Loaded only once the load has ended (with a snapshot or an error): a load cut
            # off by a preemption is redone by the rerun, which would otherwise start from
            # nothing and overwrite the stored progress at its first save.
            try:
                self.snapshot = await store.load(key)
            except Exception as exc:
                self._loaded = True
                run.error = _restore_error(f"snapshot store: {exc}", exc)
                return
            self._loaded = True
        snapshot, state = self.snapshot, self._task_state
        if snapshot is None:
            return
        assert state is not None
        try:
            state.restore(snapshot)
        except Exception as exc:
            run.error = _restore_error(str(exc), exc)

    async def forget_stored_snapshot(self, log: Any) -> None:
        """A keyed execution completed: its stored snapshot is of no more use."""
        store, key = self._store, self.key
        assert store is not None
        assert key is not None
        with anyio.CancelScope(shield=True):
            try:
                await store.delete(key)
            except Exception as exc:  # the result stands; a stale snapshot is only waste
                log.error("snapshot_delete_failed", task=self.name, exc_info=exc)

    # -- the callers attached to it --------------------------------------------------------

    def attached(self) -> list[TaskHandle[Any]]:
        """The handles whose callers still wait for this execution's outcome."""
        first: list[TaskHandle[Any]] = [self] if self._first_attached else []
        if self._joined:
            first.extend(self._joined)
        return first

    def attach(self, handle: JoinedHandle[Any]) -> None:
        """Attach the handle of a caller that joins by key."""
        if self._joined is None:
            self._joined = [handle]
        else:
            self._joined.append(handle)

    def detach(self, handle: TaskHandle[Any], reason: str) -> bool:
        """Detach ``handle``, whose caller gave up for ``reason`` (``"cancelled"`` or
        ``"timeout"``); False if it was not attached. The last caller's reason is kept:
        the execution is counted as what that caller saw."""
        if handle is self:
            if not self._first_attached:
                return False
            self._first_attached = False
        else:
            joined = self._joined
            if joined is None or handle not in joined:
                return False
            joined.remove(handle)
        if not self.has_attached():
            self._gave_up = reason
        return True

    def has_attached(self) -> bool:
        """True while some caller still waits."""
        return self._first_attached or bool(self._joined)

    def abandoned(self) -> bool:
        """True when every attached caller already has its outcome (it gave up, and its
        handle has not yet detached), or none is attached."""
        if self._first_attached and not self.done():
            return False
        return all(handle.done() for handle in self._joined or ())

    def settle_all(
        self, result: object = None, error: BaseException | None = None, cancel: bool = False
    ) -> None:
        """Give every attached caller still waiting the same outcome: ``result``, or
        ``error``, or a cancellation. The one place handles are settled from a run."""
        handles = (self,) if self._joined is None else self.attached()
        for handle in handles:
            if handle.done() or (handle is self and not self._first_attached):
                continue
            if cancel:
                _cancel(handle)
            elif error is not None:
                _set_exception(handle, error)
            else:
                _set_result(handle, result)

    # -- what a run's context calls (the SnapshotKeeper protocol) -------------------------

    def _keep_snapshot(self, data: bytes) -> None:
        """Keep ``data`` as the latest snapshot (called by the run's context)."""
        self.snapshot = data
        self.count_checkpoint()

    def count_checkpoint(self) -> None:
        """Count one checkpoint of the current run (a run with none that is preempted is
        a wasted run)."""
        run = self._run
        if run is not None:
            run.checkpoints += 1

    async def _persist_snapshot(self, data: bytes) -> None:
        """Write ``data`` to the snapshot store (keyed tasks only)."""
        if self._store is not None and self.key is not None:
            await self._store.save(self.key, data)


def _restore_error(message: str, cause: Exception) -> StateRestoreError:
    error = StateRestoreError(f"failed to restore state: {message}")
    error.__cause__ = cause
    return error
