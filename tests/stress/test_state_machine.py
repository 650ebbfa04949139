"""A hypothesis state machine that drives executors through random storms (issue 5).

Each rule is one thing a program does to an executor: submit a task (of many kinds, at
any priority, through ``execute``, ``submit`` or ``submit_nowait``), cancel a caller,
cancel a handle, let the event loop run some iterations, shut down (draining or not,
waiting or not) and start a fresh executor. After every rule the scheduling invariants are
checked, and again at teardown, once every executor is shut down and every call ended:

* every call ends with exactly one outcome, of a kind its history allows;
* no execution runs twice at once, a worker runs one compute at a time (so nothing
  overlaps in single-processor mode), and lanes go to the right kind of worker;
* no compute starts for a call that already has its outcome;
* a run that follows a snapshot starts from exactly that snapshot;
* the statistics add up after every step, and match the calls' outcomes at the end.

The loop is driven by hand (``loop.run_until_complete`` per rule), so every interleaving
of the async computes is decided by loop iterations. Timeouts are either ``0`` (they fire
on the next loop iteration) or too long to fire. Sync computes run in real threads, the
only part of an example whose timing is not replayed exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from typing import Any, ClassVar

import pytest
import structlog
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from microscheduler import (
    ExecutorShutdownError,
    InterruptContext,
    Priority,
    QueueFullError,
    StateRestoreError,
    Task,
    TaskExecutor,
    TaskHandle,
    TaskInterruptedError,
    TaskStatus,
    WorkerConfig,
    WorkerInfo,
    WorkerType,
)

HANG_GUARD = 20.0  # seconds; only a bug (a call or shutdown that never ends) reaches it
NEVER = 3600.0  # a timeout or grace too long to expire during an example


class Boom(Exception):
    """The failure a raising compute raises."""


class Counter:
    """A resumable state: a step counter."""

    def __init__(self) -> None:
        self.value = 0

    def save(self) -> bytes:
        return str(self.value).encode()

    def restore(self, data: bytes) -> None:
        self.value = int(data)


class Unrestorable(Counter):
    """A state whose snapshots cannot be restored."""

    def restore(self, data: bytes) -> None:
        raise ValueError(f"cannot restore {data!r}")


# -- what a call is and how it ended -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one call submits and how."""

    priority: Priority
    kind: str  # "steps" | "raises" | "stubborn" | "sync" | "unrestorable"
    steps: int
    checkpoint: bool
    polite: bool  # an async compute that returns "stopped" once interrupted
    stubborn: str  # after catching one CancelledError: "reraise" | "return" | "continue"
    no_reschedule: bool
    snapshot: int | None  # Task.saved_state
    task_timeout: float | None
    call_timeout: float | None
    via: str  # "execute" | "submit" | "submit_nowait"


specs = st.builds(
    Spec,
    priority=st.sampled_from(
        [Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND] * 2 + [Priority.BACKGROUND]
    ),
    kind=st.sampled_from(
        ["steps", "steps", "raises", "stubborn", "stubborn", "sync", "unrestorable"]
    ),
    steps=st.integers(0, 10),
    checkpoint=st.booleans(),
    polite=st.booleans(),
    stubborn=st.sampled_from(["reraise", "return", "continue"]),
    no_reschedule=st.sampled_from([False, False, True]),
    snapshot=st.none() | st.integers(0, 3),
    task_timeout=st.sampled_from([None] * 5 + [0.0, NEVER]),
    call_timeout=st.sampled_from([None] * 5 + [0.0, NEVER]),
    via=st.sampled_from(["execute", "submit", "submit_nowait"]),
)

STOPPED = "stopped"  # what a polite or stubborn compute returns when it gives in


@dataclasses.dataclass(eq=False)
class Call:
    """One call and everything the machine did to it."""

    index: int
    spec: Spec
    era: int  # which executor (they are replaced after a shutdown)
    state: Counter
    handle: TaskHandle[Any] | None = None
    caller: asyncio.Task[None] | None = None
    caller_cancelled: bool = False
    handle_cancelled: bool = False
    outcome: str | None = None
    outcomes: int = 0
    value: Any = None
    saved: int | None = None  # the last snapshot taken (or given as Task.saved_state)
    active: int = 0  # runs of its compute in progress

    def given_up(self) -> bool:
        return self.outcome is not None or self.handle_cancelled

    def expected_value(self) -> int:
        return max(self.spec.steps, self.spec.snapshot or 0)


def classify(exc: BaseException) -> str:
    """Name the kind of an outcome that is an exception."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, Boom):
        return "failed"
    if isinstance(exc, ExecutorShutdownError):
        return "shutdown"
    if isinstance(exc, StateRestoreError):
        return "restore"
    if isinstance(exc, TaskInterruptedError):
        return "interrupted"
    if isinstance(exc, QueueFullError):
        return "full"
    return f"unexpected {exc!r}"


# Where an execution that ended with each outcome is counted in ExecutorStatistics.
BUCKET = {
    "result": "completed",
    "failed": "failed",
    "restore": "failed",
    "interrupted": "failed",
    "timeout": "timed_out",
    "cancelled": "cancelled",
    "shutdown": "cancelled",
}


@dataclasses.dataclass(eq=False)
class Era:
    """One executor and what happened to it."""

    executor: TaskExecutor
    shutdown_started: bool = False
    refused: int = 0  # calls made after its shutdown began
    shutdown_task: asyncio.Task[None] | None = None


class ExecutorMachine(RuleBasedStateMachine):
    """Random programs against one executor configuration at a time."""

    config: ClassVar[WorkerConfig] = WorkerConfig()

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.loop_errors.append(context))
        self.log = structlog.testing.CapturingLogger()
        self.calls: list[Call] = []
        self.eras: list[Era] = []
        self.violations: list[str] = []
        self.lock = threading.Lock()  # sync computes report from their threads
        self.busy_workers: dict[int, int] = {}
        self.running_computes = 0
        self.start_executor()

    # -- plumbing ----------------------------------------------------------------------

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @property
    def era(self) -> Era:
        return self.eras[-1]

    def start_executor(self) -> None:
        logger = structlog.wrap_logger(
            self.log, wrapper_class=structlog.make_filtering_bound_logger(20)
        )
        executor = TaskExecutor.from_config(self.config, logger=logger)
        self.run(executor.start())
        self.eras.append(Era(executor))

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

    def make_compute(self, call: Call) -> Any:
        spec = call.spec
        state = call.state

        def sync_compute(resource: object, _state: Any, ctx: InterruptContext) -> Any:
            if spec.no_reschedule:
                ctx.no_reschedule()
            self.enter(call, resource, ctx, in_thread=True)
            try:
                while state.value < spec.steps:
                    if ctx.is_interrupted():
                        return STOPPED
                    state.value += 1
                    if spec.checkpoint:
                        ctx.save_state_nowait(state)
                        self.saved(call)
                return state.value
            finally:
                self.leave(call, resource)

        async def async_compute(resource: object, _state: Any, ctx: InterruptContext) -> Any:
            if spec.no_reschedule:
                ctx.no_reschedule()
            self.enter(call, resource, ctx, in_thread=False)
            caught = False
            try:
                while state.value < spec.steps:
                    if spec.polite and ctx.is_interrupted():
                        return STOPPED
                    if spec.kind == "stubborn":
                        try:
                            await asyncio.sleep(0)
                        except asyncio.CancelledError:
                            if caught or spec.stubborn == "reraise":
                                raise
                            caught = True
                            if spec.stubborn == "return":
                                return STOPPED
                            continue  # ignore this one and keep stepping
                    else:
                        await asyncio.sleep(0)
                    state.value += 1
                    if spec.checkpoint:
                        await ctx.save_state(state)
                        self.saved(call)
                if spec.kind == "raises":
                    raise Boom(call.index)
                return state.value
            finally:
                self.leave(call, resource)

        return sync_compute if spec.kind == "sync" else async_compute

    def make_task(self, call: Call) -> Task[Any]:
        spec = call.spec
        snapshot = None if spec.snapshot is None else str(spec.snapshot).encode()
        return Task(
            name=f"call{call.index}",
            compute=self.make_compute(call),
            priority=spec.priority,
            initial_state=call.state,
            saved_state=snapshot,
            timeout=spec.task_timeout,
        )

    def record(self, call: Call, outcome: str, value: Any = None) -> None:
        call.outcomes += 1
        call.outcome = outcome
        call.value = value
        if call.outcomes > 1:
            self.violation(f"call {call.index} got a second outcome {outcome}")

    async def caller(self, call: Call, task: Task[Any]) -> None:
        """One caller: makes the call and records the one outcome it gets."""
        executor = self.eras[call.era].executor
        spec = call.spec
        try:
            if spec.via == "execute":
                value = await executor.execute(task, timeout=spec.call_timeout)
            else:
                if call.handle is None:
                    call.handle = await executor.submit(task, timeout=spec.call_timeout)
                value = await call.handle
        except (Exception, asyncio.CancelledError) as exc:
            self.record(call, classify(exc))
        else:
            self.record(call, "result", value)

    # -- rules ---------------------------------------------------------------------------

    @rule(spec=specs, spin=st.integers(0, 4))
    def submit(self, spec: Spec, spin: int) -> None:
        """Submit a call, then let the loop run ``spin`` more iterations.

        Once one call has been refused by a shut-down executor, the next one goes to a
        fresh executor, so that most of a program runs on a live one.
        """
        if self.era.refused and len(self.eras) < 5:
            self.replace_executor()
        if self.era.shutdown_started:
            self.era.refused += 1
        state = Unrestorable() if spec.kind == "unrestorable" else Counter()
        call = Call(len(self.calls), spec, len(self.eras) - 1, state)
        call.saved = spec.snapshot
        self.calls.append(call)
        task = self.make_task(call)

        async def admit() -> None:
            if spec.via == "submit_nowait":
                try:
                    call.handle = self.era.executor.submit_nowait(task, timeout=spec.call_timeout)
                except (ExecutorShutdownError, QueueFullError) as exc:
                    self.record(call, classify(exc))
                    return
            call.caller = asyncio.create_task(self.caller(call, task))
            for _ in range(spin):
                await asyncio.sleep(0)

        self.run(admit())

    @rule(iterations=st.integers(1, 25))
    def run_loop(self, iterations: int) -> None:
        """Let the event loop run some iterations."""

        async def spin() -> None:
            for _ in range(iterations):
                await asyncio.sleep(0)

        self.run(spin())

    @rule(pick=st.integers(0, 1000))
    def cancel_caller(self, pick: int) -> None:
        """Cancel a caller that has not ended (from a task on the loop, as programs do)."""
        live = [c for c in self.calls if c.caller is not None and not c.caller.done()]
        if not live:
            return
        call = live[pick % len(live)]

        async def cancel() -> None:
            assert call.caller is not None
            call.caller_cancelled = True
            call.caller.cancel()

        self.run(cancel())

    @rule(pick=st.integers(0, 1000))
    def cancel_handle(self, pick: int) -> None:
        """Cancel a handle that has no outcome yet (from a task on the loop)."""
        live = [c for c in self.calls if c.handle is not None and not c.handle.done()]
        if not live:
            return
        call = live[pick % len(live)]

        async def cancel() -> None:
            assert call.handle is not None
            if call.handle.done():
                return  # it ended while the loop ran up to this point
            cancelled = call.handle.cancel()
            # Only now: a sync compute's thread may check given_up() at any moment, and
            # before cancel() returns its run was not yet interrupted.
            call.handle_cancelled = True
            if not cancelled:
                self.violation(f"cancel() of call {call.index}'s pending handle returned False")
            if call.handle.status is not TaskStatus.CANCELLED:
                self.violation(f"call {call.index} cancelled: status {call.handle.status}")

        self.run(cancel())

    @precondition(lambda self: not self.era.shutdown_started)
    @rule(drain=st.booleans(), wait=st.booleans(), dice=st.integers(0, 1))
    def shutdown(self, drain: bool, wait: bool, dice: int) -> None:
        """Shut the executor down, draining or not, waiting for it or not.

        Only one draw in two does, so that most of a program runs on a live executor.
        """
        if dice:
            return
        era = self.era
        era.shutdown_started = True
        era.shutdown_task = self.loop.create_task(era.executor.shutdown(drain=drain))
        if wait:
            self.run(self.finish(era.shutdown_task, "shutdown"))

    @precondition(lambda self: self.era.shutdown_started)
    @rule(drain=st.booleans())
    def shutdown_again(self, drain: bool) -> None:
        """Call shutdown again (cutting a drain short when ``drain`` is False)."""
        task = self.loop.create_task(self.era.executor.shutdown(drain=drain))
        self.run(self.finish(task, "second shutdown"))

    @precondition(lambda self: self.era.shutdown_started and len(self.eras) < 5)
    @rule()
    def replace_executor(self) -> None:
        """Finish the shutdown and start a fresh executor of the same configuration."""
        task = self.era.shutdown_task
        assert task is not None
        self.run(self.finish(task, "shutdown"))
        self.start_executor()

    async def finish(self, task: asyncio.Future[Any], what: str) -> None:
        try:
            async with asyncio.timeout(HANG_GUARD):
                await asyncio.shield(task)
        except TimeoutError:
            self.violation(f"{what} did not end within {HANG_GUARD}s")

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def no_violation(self) -> None:
        """No compute overlapped, restarted from a wrong snapshot or ran too late."""
        with self.lock:
            assert self.violations == [], self.violations

    @invariant()
    def statistics_add_up(self) -> None:
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

    @invariant()
    def outcomes_are_allowed(self) -> None:
        """Every call that ended got one outcome that its history allows."""
        for call in self.calls:
            if call.outcome is not None:
                self.check_outcome(call)

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

    # -- the end ---------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self.run(self.wind_down())
            self.final_checks()
        finally:
            self.close_loop()

    def close_loop(self) -> None:
        loop = self.loop
        try:
            leftover = asyncio.all_tasks(loop)
            for task in leftover:  # only after a failure: never leave a task behind
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.wait(leftover))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    async def wind_down(self) -> None:
        for era in self.eras:
            if era.shutdown_task is None:
                era.shutdown_started = True
                era.shutdown_task = asyncio.create_task(era.executor.shutdown(drain=True))
            await self.finish(era.shutdown_task, "shutdown at teardown")
        callers = [c.caller for c in self.calls if c.caller is not None]
        if callers:
            try:
                async with asyncio.timeout(HANG_GUARD):
                    await asyncio.wait(callers)
            except TimeoutError:
                hung = [c.index for c in self.calls if c.caller and not c.caller.done()]
                self.violation(f"calls {hung} never ended")
                for task in callers:
                    task.cancel()
                await asyncio.wait(callers)

    def final_checks(self) -> None:
        with self.lock:
            assert self.violations == [], self.violations
            assert self.running_computes == 0, self.running_computes
        for call in self.calls:
            assert call.outcome is not None, f"call {call.index} got no outcome"
            self.check_outcome(call)
        for number, era in enumerate(self.eras):
            self.check_final_statistics(number, era)
        errors = [e for e in self.log.calls if e.method_name in ("error", "critical", "exception")]
        assert errors == [], errors
        assert self.loop_errors == [], self.loop_errors
        leftover = asyncio.all_tasks(self.loop)
        assert not leftover, leftover

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
            else:
                sure[BUCKET[call.outcome]] += 1
        assert s.submitted == s.completed + s.failed + s.cancelled + s.timed_out, s
        assert sum(sure.values()) <= s.submitted <= sum(sure.values()) + unsure, (sure, s)
        for bucket, count in sure.items():
            actual = getattr(s, bucket)
            assert count <= actual <= count + unsure, (bucket, count, unsure, s)


def _machine(name: str, config: WorkerConfig) -> type[ExecutorMachine]:
    return type(name, (ExecutorMachine,), {"config": config})


# asyncio debug mode (the second CI pass) makes every step several times slower; it is
# there to catch misuse of the loop, which fewer examples find as well.
_DEBUG = bool(os.environ.get("PYTHONASYNCIODEBUG"))

STRESS = settings(
    max_examples=30 if _DEBUG else 100,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

MACHINES = {
    "single": WorkerConfig(),
    "multi": WorkerConfig(ui_workers=1, background_workers=2),
    "multi_preempt": WorkerConfig(ui_workers=1, background_workers=2, preempt_background=True),
    # Lanes that fill up: submit() waits for room, submit_nowait() raises QueueFullError.
    "single_small_lanes": WorkerConfig(
        ui_queue_buffer_size=1, last_effort_buffer_size=1, background_buffer_size=2
    ),
    # Preempted runs get all the time they need to return by themselves; only a stronger
    # interrupt (caller, timeout, shutdown) cancels them.
    "single_grace": WorkerConfig(interrupt_grace=NEVER),
    "multi_preempt_grace": WorkerConfig(
        ui_workers=2, background_workers=2, preempt_background=True, interrupt_grace=NEVER
    ),
}


@pytest.mark.parametrize("mode", sorted(MACHINES))
def test_executor_state_machine(mode: str) -> None:
    """Random programs of submits, cancels, timeouts, loop steps and shutdowns keep every
    scheduling invariant (docs/design.md) after every step, in each executor configuration."""
    machine = _machine(f"ExecutorMachine_{mode}", MACHINES[mode])
    run_state_machine_as_test(machine, settings=STRESS)
