"""InterruptContext: how a running compute learns it should stop, and saves progress."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from ._exceptions import StateSaveError

if TYPE_CHECKING:
    from ._state import TaskState
    from ._task import TaskHandle

__all__ = ("InterruptContext", "InterruptReason")

InterruptReason = Literal["preempted", "cancelled", "timeout", "shutdown"]


class InterruptContext:
    """The third argument of every compute: interruption signals for one run.

    A run is interrupted when urgent work preempts it (``"preempted"``), its caller gives
    up (``"cancelled"``), its ``Task.timeout`` or the caller's ``timeout`` expires
    (``"timeout"``) or the executor shuts down (``"shutdown"``). An ``async`` compute is
    then cancelled (a preempted one after the configured ``interrupt_grace``); a sync
    compute in a worker thread cannot be cancelled and should poll :meth:`is_interrupted`.

    During a preemption's grace the reason may still change to a stronger one
    (``"cancelled"``, ``"timeout"`` or ``"shutdown"``), which also ends the grace.
    """

    __module__ = "microscheduler"
    __slots__ = ("_active", "_attempt", "_event", "_handle", "_no_reschedule", "_reason", "_timers")

    def __init__(self, handle: TaskHandle[Any], attempt: int) -> None:
        self._handle = handle
        self._attempt = attempt
        self._reason: InterruptReason | None = None
        self._no_reschedule = False
        self._active = True
        self._event: asyncio.Event | None = None
        self._timers: list[asyncio.TimerHandle] | None = None

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
        return self._handle._snapshot

    @property
    def attempt(self) -> int:
        """1 on the first run, 2 on the first rerun after a preemption, and so on."""
        return self._attempt

    async def wait(self) -> None:
        """Return once this run is interrupted.

        The asyncio counterpart of polling :meth:`is_interrupted`, for use in a task group
        or with ``asyncio.wait``.
        """
        if self._reason is not None:
            return
        if self._event is None:
            self._event = asyncio.Event()
        await self._event.wait()

    async def save_state(self, state: TaskState) -> None:
        """Snapshot ``state`` now, as the task's latest checkpoint.

        If the task is later rerun, ``restore(snapshot)`` is called on its state object
        before the rerun. This never suspends, so a run that is being cancelled can still
        call it (for example in an ``except CancelledError`` block) and never loses a
        checkpoint half-way.

        Raises:
            TypeError: ``state`` is None or has no ``save()``.
            StateSaveError: ``state.save()`` raised (it is the ``__cause__``) or did not
                return bytes.
            RuntimeError: The run this context belongs to has ended.
        """
        self.save_state_nowait(state)

    def save_state_nowait(self, state: TaskState) -> None:
        """Like :meth:`save_state`, callable from a sync compute's worker thread too."""
        if state is None:
            raise TypeError("save_state() needs a TaskState to snapshot, got None")
        save = getattr(state, "save", None)
        if save is None or not callable(save):
            raise TypeError(f"save_state() needs a TaskState with save() -> bytes, got {state!r}")
        if not self._active:
            raise RuntimeError(
                f"save_state() called after run {self._attempt} of task "
                f"{self._handle.name!r} ended; save only while the compute runs"
            )
        try:
            data = save()
        except Exception as exc:
            raise StateSaveError(f"failed to save state: {exc}") from exc
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StateSaveError(
                f"failed to save state: save() must return bytes, got {type(data).__name__}"
            )
        self._handle._snapshot = bytes(data)

    def no_reschedule(self) -> None:
        """Ask that this run is not rerun if it ends up preempted.

        The caller then gets what the run returned or raised, or ``TaskInterruptedError``
        if the run was cancelled before it could return. It has no effect on a run that is
        not interrupted.
        """
        self._no_reschedule = True

    def __repr__(self) -> str:
        state = f"interrupted reason={self._reason}" if self._reason else "running"
        return f"<InterruptContext {self._handle.name!r} attempt={self._attempt} {state}>"

    # -- executor side -------------------------------------------------------------------

    def _signal(self, reason: InterruptReason) -> None:
        self._reason = reason
        if self._event is not None:
            self._event.set()

    def _add_timer(self, timer: asyncio.TimerHandle) -> None:
        if self._timers is None:
            self._timers = [timer]
        else:
            self._timers.append(timer)

    def _end(self) -> None:
        self._active = False
        if self._timers is not None:
            for timer in self._timers:
                timer.cancel()
            self._timers = None
