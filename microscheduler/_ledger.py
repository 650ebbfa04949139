"""The ledger: which executions are live, and how each one is counted, from admission to
retirement.

:class:`Ledger` is the one owner of the executor's books: ``admit()`` enters an
execution (its key, its state object, the ``submitted`` count and event), ``retire()``
is its mirror (the end's count and event, the key and state freed, the execution
released), and ``join()`` waits for the books to show nothing outstanding. Runs are
booked as they start and stop (``running``, queue waits, the ``started`` event).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from ._execution import RUNNING, Execution
from ._logging import log_task
from ._parking import ParkingLot
from ._priority import Priority
from ._runtime import Runtime
from ._stats import Counters, QueueWaits

__all__ = ("Kind", "Ledger")

Kind = Literal["completed", "failed", "cancelled", "timed_out"]

_perf_counter = time.perf_counter


class Ledger:
    """The executor's books (see the module docstring).

    Invariants:
        * ``outstanding`` is the number of executions admitted and not yet retired, and
          ``counters.submitted`` equals the sum of the end counts, ``running`` and the
          queued executions.
        * Every admitted execution retires exactly once, counted under the kind of
          outcome its callers got.
        * A key maps to its one live execution, and a shared state object to the one live
          execution using it, from admission to retirement.
    """

    __slots__ = (
        "_debug",
        "_events",
        "_idle",
        "_log",
        "_urgent_retired",
        "counters",
        "keys",
        "outstanding",
        "queue_waits",
        "states_in_use",
    )

    def __init__(self, counters: Counters, urgent_retired: Callable[[], None]) -> None:
        self._urgent_retired = urgent_retired  # preemption's: the urgent count is its own
        # The executor's counters: the ledger writes the admission, run and end counts;
        # preemption, promotion and reruns write their own (one writer per counter).
        self.counters = counters
        self.queue_waits = QueueWaits()
        self.outstanding = 0
        self.keys: dict[str, Execution] = {}  # live executions by key
        self.states_in_use: dict[int, Execution] = {}  # id(state object) -> its execution
        self._idle = ParkingLot()  # callers of join()
        self._events: Any = None
        self._log: Any = None
        self._debug = False

    def start(self, runtime: Runtime) -> None:
        """Bind the executor's runtime (at its start)."""
        self._events = runtime.events
        self._log = runtime.log
        self._debug = runtime.debug

    # -- admission and retirement, each the other's mirror -------------------------------

    def admit(self, execution: Execution, shares_state: bool) -> None:
        """Book a newly admitted execution (``shares_state``: its state object is one the
        task holds, which no other live execution may use meanwhile)."""
        if shares_state:
            self.states_in_use[id(execution._task_state)] = execution
        self.counters.submitted += 1
        self.outstanding += 1
        if execution.key is not None:
            self.keys[execution.key] = execution
        if self._events is not None:
            self._events.emit("submitted", execution)

    def joined(self, execution: Execution) -> None:
        """Book a caller that joined ``execution`` by key."""
        self.counters.joined += 1
        if self._events is not None:
            running = execution._phase == RUNNING
            self._events.emit("joined", execution, execution._worker_id if running else None)

    def retire(
        self,
        execution: Execution,
        kind: Kind,
        reason: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Book an execution's end and release it; each admitted one retires exactly once.

        A running execution's run is booked as stopped too, and the end of urgent work is
        reported to preemption (which then may release Background work). ``error`` is what
        the callers of a failed or timed-out execution get (for the event).
        """
        was_running = execution._phase == RUNNING
        c = self.counters
        if was_running:
            c.running -= 1
        if self.states_in_use:
            self.states_in_use.pop(id(execution._task_state), None)
        execution.release()
        if kind == "completed":
            c.completed += 1
        elif kind == "failed":
            c.failed += 1
        elif kind == "cancelled":
            c.cancelled += 1
            if self._debug:
                log_task(self._log, "task_cancelled", execution)
        else:
            c.timed_out += 1
        if execution.key is not None:
            self.keys.pop(execution.key, None)
        if self._events is not None:
            if kind == "cancelled" and reason is None:
                reason = "cancelled"
            # The worker of the last run, even when the execution ended waiting for a
            # rerun (preempted, then cancelled); None only if it never ran.
            self._events.emit(kind, execution, execution._worker_id, reason, error)
        if execution.priority is not Priority.BACKGROUND:
            self._urgent_retired()
        self.outstanding -= 1
        if not self.outstanding and self._idle.waiters:
            self._idle.unpark_all()

    async def join(self) -> None:
        """Wait until nothing is outstanding (work admitted meanwhile is waited for too)."""
        while self.outstanding:
            await self._idle.park()

    # -- runs ------------------------------------------------------------------------------

    def run_started(self, worker: Any, execution: Execution, run: Any) -> None:
        """Book a run that began on ``worker`` (the worker's host protocol)."""
        wait = run.t0 - execution._queued_at
        self.queue_waits.lanes[execution.priority].append(wait)
        self.counters.running += 1
        if self._debug:
            log_task(
                self._log,
                "task_started",
                execution,
                worker_id=worker.worker_id,
                worker_type=str(worker.worker_type),
                wait_ms=round(wait * 1000.0, 3),
            )
        if self._events is not None:
            kind: Any = "started" if execution.attempt == 1 else "resumed"
            # In the run's own context: the run-context hook documented in _events.
            execution._context.run(self._events.emit, kind, execution, worker.worker_id)

    def run_stopped(self) -> None:
        """Book the end of a run whose execution goes on (a rerun); :meth:`retire` books
        the others."""
        self.counters.running -= 1

    def log_completed(self, execution: Execution, t0: float, worker: Any) -> None:
        """The debug ``task_completed`` event of a run that began at ``t0``."""
        if self._debug:
            log_task(
                self._log,
                "task_completed",
                execution,
                worker_id=worker.worker_id,
                worker_type=str(worker.worker_type),
                wait_ms=round((t0 - execution._queued_at) * 1000.0, 3),
                run_ms=round((_perf_counter() - t0) * 1000.0, 3),
            )
