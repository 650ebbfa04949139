"""The executor state machine's bookkeeping: every call, every run, and the checks on them.

Computes report to the :class:`Ledger` when a run begins and ends and when it takes a
snapshot (sync computes from their worker threads, hence the lock); callers record the one
outcome they got. The ledger checks the executor's guarantees on that record:

* every call ends with exactly one outcome, of a kind its history allows;
* no execution runs twice at once, a worker runs one compute at a time (so nothing
  overlaps in single-processor mode), and lanes go to the right kind of worker;
* no compute starts for a call that already has its outcome;
* a run that follows a snapshot starts from exactly that snapshot;
* the statistics add up after every step, and match the calls' outcomes at the end.
"""

from __future__ import annotations

import threading
from typing import Any

from _calls import STOPPED, Call, Era

from benchmarks._outcomes import BUCKET
from microscheduler import (
    InterruptContext,
    Priority,
    TaskStatus,
    WorkerConfig,
    WorkerInfo,
    WorkerType,
)


class Ledger:
    """What happened to every call and executor of one example, and the checks on it."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.calls: list[Call] = []
        self.eras: list[Era] = []
        self.violations: list[str] = []
        self.lock = threading.Lock()  # sync computes report from their threads
        self.busy_workers: dict[int, int] = {}
        self.running_computes = 0

    # -- what computes and callers report -------------------------------------------------

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)

    def enter(
        self, call: Call, resource: object, ctx: InterruptContext, *, in_thread: bool
    ) -> None:
        """A run of ``call``'s compute begins (on the loop or in a thread).

        A sync compute's thread may begin its function after the caller gave up, if the
        run was handed to the thread before: it must then see ``is_interrupted()``.
        """
        with self.lock:
            call.active += 1
            self.running_computes += 1
            if call.active > 1:
                self.violations.append(f"call {call.index} runs twice at once")
            if call.given_up() and not (in_thread and ctx.is_interrupted()):
                self.violations.append(
                    f"call {call.index} started a run (attempt {ctx.attempt}) after its "
                    f"caller gave up (outcome {call.outcome})"
                )
            if call.saved is not None and call.state.value != call.saved:
                self.violations.append(
                    f"call {call.index} attempt {ctx.attempt} started at {call.state.value}, "
                    f"not at its last snapshot {call.saved}"
                )
            if not isinstance(resource, WorkerInfo):
                self.violations.append(f"call {call.index} got resource {resource!r}")
                return
            worker = resource.worker_id
            self.busy_workers[worker] = self.busy_workers.get(worker, 0) + 1
            if self.busy_workers[worker] > 1:
                self.violations.append(f"worker {worker} runs two computes at once")
            if self.config.single_processor and self.running_computes > 1:
                self.violations.append("two computes run at once in single-processor mode")
            if not self.config.single_processor:
                background = call.spec.priority is Priority.BACKGROUND
                if background != (resource.worker_type is WorkerType.BACKGROUND):
                    self.violations.append(
                        f"call {call.index} ({call.spec.priority}) ran on {resource!r}"
                    )

    def leave(self, call: Call, resource: object) -> None:
        with self.lock:
            call.active -= 1
            self.running_computes -= 1
            if isinstance(resource, WorkerInfo):
                self.busy_workers[resource.worker_id] -= 1

    def saved(self, call: Call) -> None:
        """``call``'s compute has just taken a snapshot of its state."""
        with self.lock:
            call.saved = call.state.value

    def record(self, call: Call, outcome: str, value: Any = None) -> None:
        call.outcomes += 1
        call.outcome = outcome
        call.value = value
        if call.outcomes > 1:
            self.violation(f"call {call.index} got a second outcome {outcome}")

    # -- checks after every step ----------------------------------------------------------

    def check_no_violation(self) -> None:
        with self.lock:
            assert self.violations == [], self.violations

    def check_statistics(self) -> None:
        """submitted == completed + failed + cancelled + timed_out + running + queued."""
        for era in self.eras:
            s = era.executor.statistics()
            ended = s.completed + s.failed + s.cancelled + s.timed_out
            assert s.submitted == ended + s.running + sum(s.queued.values()), s
            assert 0 <= s.running <= s.workers, s
            assert s.rescheduled <= s.preempted, s
            assert set(s.queued) == set(Priority), s
            if not self.config.single_processor and not self.config.preempt_background:
                assert s.preempted == 0, s

    def check_outcome(self, call: Call) -> None:
        spec, outcome = call.spec, call.outcome
        assert call.outcomes == 1, (call.index, call.outcomes)
        era = self.eras[call.era]
        allowed = {"result"}
        if spec.kind == "raises":
            allowed = {"failed"}
        if spec.kind == "unrestorable":
            # A snapshot given or taken before a rerun cannot be restored.
            allowed = {"restore"} if spec.snapshot is not None else {"result", "restore"}
        if spec.no_reschedule:
            allowed |= {"interrupted", "result"}
        if spec.task_timeout is not None or spec.call_timeout is not None:
            allowed.add("timeout")
        if call.caller_cancelled or call.handle_cancelled:
            allowed.add("cancelled")
        if era.shutdown_started:
            allowed.add("shutdown")
        if spec.via == "submit_nowait" and call.handle is None:
            allowed.add("full")
        assert outcome in allowed, (call.index, spec, outcome, sorted(allowed))
        if outcome == "result":
            stopped_ok = spec.no_reschedule and call.value == STOPPED
            assert call.value == call.expected_value() or stopped_ok, (call, call.value)
        handle = call.handle
        if handle is not None and handle.done():
            status = handle.status
            if outcome == "result":
                assert status is TaskStatus.COMPLETED, (call, status)
            elif outcome in ("cancelled", "shutdown") and not call.caller_cancelled:
                assert status is TaskStatus.CANCELLED, (call, status)
            elif outcome in ("failed", "restore", "interrupted", "timeout"):
                assert status is TaskStatus.FAILED, (call, status)

    # -- checks at the end ----------------------------------------------------------------

    def check_final(self) -> None:
        """Every call ended with an allowed outcome and every executor's counts match."""
        with self.lock:
            assert self.violations == [], self.violations
            assert self.running_computes == 0, self.running_computes
        for call in self.calls:
            assert call.outcome is not None, f"call {call.index} got no outcome"
            self.check_outcome(call)
        for number, era in enumerate(self.eras):
            self.check_final_statistics(number, era)

    def check_final_statistics(self, number: int, era: Era) -> None:
        """Each statistics bucket holds exactly the calls that ended in it.

        A caller cancelled just as its execution ended gets ``CancelledError`` while the
        execution itself ended otherwise (as with any awaited future): such a call may be
        counted in the bucket of either outcome.
        """
        s = era.executor.statistics()
        assert s.running == 0 and sum(s.queued.values()) == 0, s
        sure: dict[str, int] = dict.fromkeys(BUCKET.values(), 0)
        unsure = 0
        for call in self.calls:
            if call.era != number:
                continue
            assert call.outcome is not None
            if call.outcome == "full":
                continue  # refused at admission: never counted
            if call.outcome == "shutdown" and call.handle is None:
                # Refused at admission (never counted), or, through execute(), admitted
                # and then ended by the shutdown (counted as cancelled).
                unsure += call.spec.via == "execute"
            elif call.outcome == "cancelled" and call.caller_cancelled:
                unsure += 1  # maybe never admitted, maybe ended otherwise
            elif call.outcome == "timeout" and call.spec.via == "execute":
                # execute(timeout=) bounds the wait for room too: it may have expired
                # before the task was admitted (never counted).
                unsure += 1
            else:
                sure[BUCKET[call.outcome]] += 1
        assert s.submitted == s.completed + s.failed + s.cancelled + s.timed_out, s
        assert sum(sure.values()) <= s.submitted <= sum(sure.values()) + unsure, (sure, s)
        for bucket, count in sure.items():
            actual = getattr(s, bucket)
            assert count <= actual <= count + unsure, (bucket, count, unsure, s)
