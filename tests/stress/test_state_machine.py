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
import os
from typing import Any, ClassVar

import pytest
import structlog
from _calls import HANG_GUARD, NEVER, Call, Era, Spec, specs
from _computes import make_task
from _ledger import Ledger
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from benchmarks._outcomes import Counter, Unrestorable, classify
from microscheduler import (
    ExecutorShutdownError,
    QueueFullError,
    Task,
    TaskExecutor,
    TaskStatus,
    WorkerConfig,
)


class ExecutorMachine(RuleBasedStateMachine):
    """Random programs against one executor configuration at a time."""

    config: ClassVar[WorkerConfig] = WorkerConfig()

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.loop_errors.append(context))
        self.log = structlog.testing.CapturingLogger()
        self.ledger = Ledger(self.config)
        self.calls = self.ledger.calls
        self.eras = self.ledger.eras
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
            self.ledger.record(call, classify(exc))
        else:
            self.ledger.record(call, "result", value)

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
        task = make_task(call, self.ledger)

        async def admit() -> None:
            if spec.via == "submit_nowait":
                try:
                    call.handle = self.era.executor.submit_nowait(task, timeout=spec.call_timeout)
                except (ExecutorShutdownError, QueueFullError) as exc:
                    self.ledger.record(call, classify(exc))
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
                self.ledger.violation(
                    f"cancel() of call {call.index}'s pending handle returned False"
                )
            if call.handle.status is not TaskStatus.CANCELLED:
                self.ledger.violation(f"call {call.index} cancelled: status {call.handle.status}")

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
            self.ledger.violation(f"{what} did not end within {HANG_GUARD}s")

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def no_violation(self) -> None:
        """No compute overlapped, restarted from a wrong snapshot or ran too late."""
        self.ledger.check_no_violation()

    @invariant()
    def statistics_add_up(self) -> None:
        """submitted == completed + failed + cancelled + timed_out + running + queued."""
        self.ledger.check_statistics()

    @invariant()
    def outcomes_are_allowed(self) -> None:
        """Every call that ended got one outcome that its history allows."""
        for call in self.calls:
            if call.outcome is not None:
                self.ledger.check_outcome(call)

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
                self.ledger.violation(f"calls {hung} never ended")
                for task in callers:
                    task.cancel()
                await asyncio.wait(callers)

    def final_checks(self) -> None:
        self.ledger.check_final()
        errors = [e for e in self.log.calls if e.method_name in ("error", "critical", "exception")]
        assert errors == [], errors
        assert self.loop_errors == [], self.loop_errors
        leftover = asyncio.all_tasks(self.loop)
        assert not leftover, leftover


# -- configurations ----------------------------------------------------------------------------


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
