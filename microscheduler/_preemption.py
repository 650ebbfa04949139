"""The preemption supervisor: decides when urgent work interrupts Background runs.

Preemption happens synchronously, in the call that admits the urgent work, so the
Background run's ``InterruptContext`` turns interrupted before ``submit`` returns and its
cancel scope is cancelled on the very next event-loop step (or after ``interrupt_grace``).
No extra task sits between an urgent submit and the preemption it causes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ._priority import Priority

if TYPE_CHECKING:
    from ._lanes import WorkerGroup
    from ._worker import Worker

__all__ = ("Supervisor",)


class Supervisor:
    """Tracks urgent (UI and LastEffort) work and preempts Background runs for it.

    Invariants:
        * ``urgent`` counts urgent executions admitted and not yet retired, queued and
          running alike.
        * Single-processor mode: whenever urgent work is admitted while the one worker
          runs a Background task, that run is interrupted with reason ``"preempted"``.
          UI and LastEffort runs are never preempted.
        * Multi-worker mode with ``preempt_background``: every Background run is
          interrupted when urgent work is admitted, and background workers take nothing
          new while ``urgent > 0``; when it drops to zero they are all woken.
        * Multi-worker mode without it: nothing is ever preempted.
    """

    __slots__ = ("_background_group", "_gates_background", "_interrupt", "_victims", "urgent")

    def __init__(
        self,
        *,
        victims: Sequence[Worker],
        gates_background: bool,
        background_group: WorkerGroup,
        interrupt: Callable[..., None],
    ) -> None:
        self.urgent = 0
        self._victims = tuple(victims)
        self._gates_background = gates_background
        self._background_group = background_group
        self._interrupt = interrupt

    def holds_background(self) -> bool:
        """True while gated background workers must not start new work."""
        return self.urgent > 0

    def urgent_admitted(self) -> None:
        """Urgent work was queued: preempt the Background runs it displaces."""
        self.urgent += 1
        for worker in self._victims:
            handle = worker.current
            if handle is not None and handle._priority is Priority.BACKGROUND:
                self._interrupt(handle, "preempted")

    def urgent_retired(self) -> None:
        """Urgent work ended: release gated background workers once none is left."""
        self.urgent -= 1
        if self.urgent == 0 and self._gates_background:
            self._background_group.wake_all()
