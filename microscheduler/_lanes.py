"""Lanes: the executor's three priority lanes and their idle workers, as one container.

Every move of an execution into, out of or between lanes goes through :class:`Lanes`
(``put_new``, ``put_rerun``, ``promote``, ``withdraw``, ``drain``), which also wakes an
idle worker of the group that serves the lane (``wake``): no other module touches a
lane's entries or an idle worker. One lane is a :class:`Lane`, an
``asyncio.PriorityQueue`` (module ``_lane``).
"""

from __future__ import annotations

from collections.abc import Iterator

from ._config import WorkerConfig
from ._execution import Execution
from ._lane import Lane
from ._parking import ParkingLot
from ._priority import Priority

__all__ = ("Lane", "Lanes")


class Lanes:
    """The UI, LastEffort and Background lanes, indexed by :class:`Priority`, and the
    parking lots where the workers serving them wait when idle.

    Invariants:
        * In single-processor mode one lot holds the one worker; otherwise UI and
          LastEffort share the UI workers' lot and Background has the background
          workers' own.
        * Admitting or requeueing work into a lane wakes one idle worker that serves it;
          a wake-up may find nothing to do (another worker took the work first), and a
          busy worker finds new work when it next checks its lanes, so none is lost.
    """

    __slots__ = ("_lanes", "idle", "lanes")

    def __init__(self, config: WorkerConfig) -> None:
        self._lanes = self.lanes = (
            Lane(Priority.UI, config.ui_queue_buffer_size),
            Lane(Priority.LAST_EFFORT, config.last_effort_buffer_size),
            Lane(Priority.BACKGROUND, config.background_buffer_size),
        )  # ``lanes``: the three as a tuple, indexed by priority without a method call
        urgent_idle = ParkingLot()
        background_idle = urgent_idle if config.single_processor else ParkingLot()
        #: Each lane's idle workers (one lot may serve several lanes).
        self.idle = (urgent_idle, urgent_idle, background_idle)

    def __getitem__(self, priority: Priority) -> Lane:
        return self._lanes[priority]

    def __iter__(self) -> Iterator[Lane]:
        return iter(self._lanes)

    def __len__(self) -> int:
        return 3

    def queued(self) -> int:
        """Live entries in all three lanes."""
        return sum(len(lane) for lane in self._lanes)

    def put_new(self, execution: Execution) -> None:
        """Queue newly admitted work at its lane's tail (room was checked) and wake a worker."""
        priority = execution.priority
        self._lanes[priority].put_new(execution)
        idle = self.idle[priority]
        if idle.waiters:  # no call when every worker is busy (benchmark row: bulk)
            idle.unpark_one()

    def put_rerun(self, execution: Execution) -> None:
        """Queue a preempted execution ahead of its lane's new work and wake a worker."""
        priority = execution.priority
        self._lanes[priority].put_rerun(execution)
        self.idle[priority].unpark_one()

    def promote(self, execution: Execution, old: Priority) -> None:
        """Move a queued execution from ``old``'s lane to its (new) priority's lane.

        A promotion is not an admission: it never waits for room, and may take the new
        lane over its capacity for a while. A running execution has no entry to move.
        """
        if execution._entry is None:
            return
        self._lanes[old].withdraw(execution)
        self._lanes[execution.priority].put_promoted(execution)
        self.idle[execution.priority].unpark_one()

    def withdraw(self, execution: Execution) -> None:
        """Take a queued or preempted execution's entry out of its lane."""
        self._lanes[execution.priority].withdraw(execution)

    def drain(self) -> list[Execution]:
        """Remove and return every queued execution, most urgent lane first."""
        return [execution for lane in self._lanes for execution in lane.drain()]

    def wake(self, priority: Priority) -> None:
        """Wake every idle worker serving ``priority``'s lane (gated work may start)."""
        self.idle[priority].unpark_all()

    def wake_submitters(self) -> None:
        """Wake every submitter waiting for room (shutdown: they are refused)."""
        for lane in self._lanes:
            lane.wake_all_submitters()

    def wake_idle(self) -> None:
        """Wake every idle worker (shutdown: they return once nothing is left)."""
        for lot in self.idle:
            lot.unpark_all()
