"""InterruptContext: one run's interruption signal, its checkpoints and its outcome."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import anyio.from_thread

from ._exceptions import StateSaveError
from ._logging import logger

if TYPE_CHECKING:
    from ._state import TaskState

__all__ = ("InterruptContext", "InterruptReason", "SnapshotKeeper")

InterruptReason = Literal["preempted", "cancelled", "timeout", "shutdown"]


class SnapshotKeeper(Protocol):
    """What a run's context saves snapshots into: its execution."""

    snapshot: bytes | None

    @property
    def name(self) -> str:
        """The task's name, for messages."""
        ...

    @property
    def key(self) -> str | None:
        """The task's key, for messages."""
        ...

    def _keep_snapshot(self, data: bytes) -> None:
        """Keep ``data`` as the latest snapshot in memory, counting it as one checkpoint
        of the current run (may be called from a thread)."""
        ...

    async def _persist_snapshot(self, data: bytes) -> None:
        """Write ``data`` through to durable storage (a no-op for unkeyed tasks)."""
        ...


class _Done:
    """An awaitable that is already complete (an unkeyed save has nothing to wait for)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


_DONE = _Done()


class InterruptContext:
    """The third argument of every compute: interruption signals for one run.

    A run is interrupted when urgent work preempts it (``"preempted"``), its caller gives
    up (``"cancelled"``), its ``Task.timeout`` or the caller's ``timeout`` expires
    (``"timeout"``) or the executor shuts down (``"shutdown"``). An ``async`` compute is
    then cancelled (a preempted one after the configured ``interrupt_grace``); a sync
    compute in a worker thread cannot be cancelled and should poll :meth:`is_interrupted`.

    During a preemption's grace the reason may still change to a stronger one
    (``"cancelled"``, ``"timeout"`` or ``"shutdown"``), which also ends the grace.

    How the run ended is not recorded here: that is the executor's record of the run.
    """

    __module__ = "microscheduler"
    __slots__ = (
        "_active",
        "_attempt",
        "_event",
        "_has_state",
        "_keyed",
        "_last_save",
        "_no_reschedule",
        "_owner",
        "_reason",
        "_saves_awaited",
        "_saves_made",
    )

    def __init__(
        self, owner: SnapshotKeeper, attempt: int, has_state: bool = True, keyed: bool = False
    ) -> None:
        self._owner = owner
        self._keyed = keyed
        self._attempt = attempt
        self._has_state = has_state
        self._reason: InterruptReason | None = None
        self._no_reschedule = False
        self._active = True
        self._event: asyncio.Event | None = None
        # Keyed saves handed out and awaited, to catch one that was never awaited.
        self._saves_made = self._saves_awaited = 0
        self._last_save: Coroutine[Any, Any, None] | None = None

    def is_interrupted(self) -> bool:
        """True once this run has been asked to stop. Safe to call from any thread."""
        return self._reason is not None

    @property
    def reason(self) -> InterruptReason | None:
        """None while the run is not interrupted; then why it was."""
        return self._reason

    @property
    def snapshot(self) -> bytes | None:
        """The task's latest snapshot: the one this run was restored from, or the last one
        saved since by :meth:`save_state`; None if there is none.

        For computes that hand their progress to something else to resume from (a remote
        call, a subprocess) rather than to the task's state object.
        """
        return self._owner.snapshot

    @property
    def attempt(self) -> int:
        """1 on the first run, 2 on the first rerun after a preemption, and so on."""
        return self._attempt

    async def wait(self) -> None:
        """Return once this run is interrupted.

        The asyncio counterpart of polling :meth:`is_interrupted`, for use in a task group
        or with ``asyncio.wait``. A compute that *ends* when interrupted (serve until
        preempted, then return what it has) must call :meth:`no_reschedule` first: a
        preempted run is otherwise rerun, and the rerun waits again for an interrupt that
        may never come.
        """
        if self._reason is not None:
            return
        if self._event is None:
            self._event = asyncio.Event()
        await self._event.wait()

    def save_state(self, state: TaskState) -> Awaitable[None]:
        """Snapshot ``state`` now, as the task's latest checkpoint; await the result.

        If the task is later rerun, ``restore(snapshot)`` is called on its state object
        before the rerun. The snapshot is taken when this is called. For a task with a
        ``key`` it is also written to the executor's snapshot store, and awaiting returns
        once that write is durable; the write is shielded, so a run that is being cancelled
        can still checkpoint (for example in an ``except CancelledError`` block) and never
        loses one half-way. For a task without a key awaiting never suspends.

        From a sync compute's worker thread, call it without ``await`` (or use
        :meth:`save_state_nowait`): the snapshot is kept at once, and for a keyed task the
        call blocks the thread until the write is durable.

        Raises:
            TypeError: ``state`` is None or has no ``save()``.
            ValueError: The task has no ``initial_state``: nothing would restore the
                snapshot.
            StateSaveError: ``state.save()`` raised, did not return bytes, or the store
                failed (the cause is chained).
            RuntimeError: The run this context belongs to has ended.
        """
        return self._keep(self._snapshot(state))

    def save_snapshot(self, data: bytes) -> Awaitable[None]:
        """Keep ``data`` itself as the task's latest checkpoint; await the result.

        For computes that resume from :attr:`snapshot` rather than from a state object
        (a remote call, a subprocess): the bytes are kept, and written through to the
        snapshot store for a keyed task, exactly as :meth:`save_state` does with
        ``state.save()``. Works from a sync compute's thread as :meth:`save_state` does.

        Raises:
            TypeError: ``data`` is not bytes.
            RuntimeError: The run this context belongs to has ended.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"save_snapshot() needs bytes, got {type(data).__name__}")
        self._check_active("save_snapshot")
        data = bytes(data)
        self._owner._keep_snapshot(data)
        return self._keep(data)

    def _keep(self, data: bytes) -> Awaitable[None]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a sync compute's worker thread
            if self._keyed:
                anyio.from_thread.run(self._persist, data)
            return _DONE
        if not self._keyed:
            return _DONE
        self._saves_made += 1
        self._last_save = self._persist(data)
        return self._last_save

    async def _persist(self, data: bytes) -> None:
        self._saves_awaited += 1
        with anyio.CancelScope(shield=True):
            try:
                await self._owner._persist_snapshot(data)
            except Exception as exc:
                raise StateSaveError(f"failed to save state: {exc}") from exc

    def save_state_nowait(self, state: TaskState) -> None:
        """Keep a snapshot of ``state`` in memory at once, without waiting for the store.

        Callable from a sync compute's thread as well as from the loop. For a keyed task
        the snapshot reaches the store only at the next awaited :meth:`save_state`.
        """
        self._snapshot(state)

    def _snapshot(self, state: TaskState) -> bytes:
        if state is None:
            raise TypeError("save_state() needs a TaskState to snapshot, got None")
        save = getattr(state, "save", None)
        if save is None or not callable(save):
            raise TypeError(f"save_state() needs a TaskState with save() -> bytes, got {state!r}")
        self._check_active("save_state")
        if not self._has_state:
            raise ValueError(
                f"save_state() in task {self._owner.name!r}, which has no initial_state: "
                f"nothing would restore the snapshot on a rerun; pass "
                f"Task(initial_state=...) (a TaskState, or a factory of one)"
            )
        try:
            data = save()
        except Exception as exc:
            raise StateSaveError(f"failed to save state: {exc}") from exc
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StateSaveError(
                f"failed to save state: save() must return bytes, got {type(data).__name__}"
            )
        data = bytes(data)
        self._owner._keep_snapshot(data)
        return data

    def _check_active(self, what: str) -> None:
        if not self._active:
            raise RuntimeError(
                f"{what}() called after run {self._attempt} of task "
                f"{self._owner.name!r} ended; save only while the compute runs"
            )

    def no_reschedule(self) -> None:
        """Ask that this run is not rerun if it ends up preempted.

        The caller then gets what the run returned or raised, or ``TaskInterruptedError``
        if the run was cancelled before it could return. It has no effect on a run that is
        not interrupted.
        """
        self._no_reschedule = True

    def __repr__(self) -> str:
        state = f"interrupted reason={self._reason}" if self._reason else "running"
        return f"<InterruptContext {self._owner.name!r} attempt={self._attempt} {state}>"

    # -- executor side -------------------------------------------------------------------
    # The package's protocol with a run's context: the executor reads ``_reason``,
    # ``_active``, ``_attempt`` and ``_no_reschedule`` (the public ``reason`` and
    # ``attempt`` are the same facts, read without a property call on the hot path) and
    # calls ``_signal`` and ``_end``; nothing else outside this module touches the context.

    def _signal(self, reason: InterruptReason) -> None:
        self._reason = reason
        if self._event is not None:
            self._event.set()

    def _end(self) -> StateSaveError | None:
        """The run has ended: no more saves. Returns the error a run that would complete
        must fail with instead, if a keyed save was never awaited (else None)."""
        self._active = False
        if self._saves_made != self._saves_awaited:
            return self._refuse_unawaited_saves()
        return None

    def _refuse_unawaited_saves(self) -> StateSaveError:
        """A keyed save was never awaited: its snapshot never reached the store.

        The run's result would hide lost durability (a crash restarts from the beginning),
        so a run that would have completed fails instead (the executor applies the
        returned error), with an error that names the task; any other ending keeps its
        outcome and the warning says what was lost.
        """
        last = self._last_save
        if last is not None and inspect.getcoroutinestate(last) == inspect.CORO_CREATED:
            last.close()  # no "coroutine was never awaited" warning naming a private method
        missed = self._saves_made - self._saves_awaited
        message = (
            f"task {self._owner.name!r} (key {self._owner.key!r}) called save_state() (or "
            f"save_snapshot()) without await {missed} time(s) in run {self._attempt}: never "
            f"awaited, those snapshots never "
            f"reached the snapshot store, so a crash would have restarted the task from its "
            f"beginning; write 'await interrupt.save_state(state)'"
        )
        logger.warning(
            "save_state_not_awaited", task=self._owner.name, key=self._owner.key, missed=missed
        )
        return StateSaveError(message)
