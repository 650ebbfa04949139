"""Task construction, task state and the TaskHandle API."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import pytest
from _helpers import Counter, Gate, const, task

from microscheduler import (
    InterruptContext,
    NoOpTaskState,
    Priority,
    StateRestoreError,
    StateSaveError,
    Task,
    TaskExecutor,
    TaskState,
    TaskStatus,
)


async def noop(resource: object, state: TaskState, ctx: InterruptContext) -> None:
    return None


async def _four(resource: object, state: object, ctx: InterruptContext, extra: int) -> int:
    return extra


class _TwoParameters:
    def compute(self, resource: object, state: object) -> None:
        return None

    def __call__(self, resource: object, state: object) -> None:
        return None


class _ThreeParameters:
    async def compute(self, resource: object, state: object, ctx: InterruptContext) -> None:
        return None

    async def __call__(self, resource: object, state: object, ctx: InterruptContext) -> None:
        return None


class TestTaskValidation:
    def test_defaults(self) -> None:
        """A task defaults to the Background lane, no state, no snapshot, no timeout."""
        t = Task(name="x", compute=noop)
        assert t.priority is Priority.BACKGROUND
        assert (t.initial_state, t.saved_state, t.timeout) == (None, None, None)

    @pytest.mark.parametrize("name", ["", "   "])
    def test_empty_name(self, name: str) -> None:
        """An empty name is a ValueError naming the field."""
        with pytest.raises(ValueError, match="Task name must not be empty"):
            Task(name=name, compute=noop)

    def test_name_must_be_a_string(self) -> None:
        """A non-string name is a TypeError naming the field."""
        with pytest.raises(TypeError, match="Task name must be a str"):
            Task(name=7, compute=noop)  # type: ignore[arg-type]

    def test_compute_must_be_callable(self) -> None:
        """A non-callable compute is a TypeError naming the field."""
        with pytest.raises(TypeError, match="Task compute must be callable"):
            Task(name="x", compute="run")  # type: ignore[arg-type]

    @pytest.mark.parametrize("priority", [3, -1, True, 2.0, "UI", None])
    def test_priority_must_be_a_priority(self, priority: Any) -> None:
        """A priority that is neither a Priority nor the int of one is a ValueError naming
        the field."""
        with pytest.raises(ValueError, match="Task priority must be a Priority"):
            Task(name="x", compute=noop, priority=priority)

    @pytest.mark.parametrize(("value", "priority"), [(0, Priority.UI), (2, Priority.BACKGROUND)])
    def test_int_priority_is_coerced(self, value: int, priority: Priority) -> None:
        """A plain int equal to a Priority value is accepted and stored as that Priority."""
        assert Task(name="x", compute=noop, priority=value).priority is priority  # type: ignore[arg-type]

    def test_negative_timeout(self) -> None:
        """A negative timeout is a ValueError naming the field."""
        with pytest.raises(ValueError, match="Task timeout must be >= 0"):
            Task(name="x", compute=noop, timeout=-1)

    def test_timeout_must_be_a_number(self) -> None:
        """A timeout that is not a number is a TypeError naming the field."""
        with pytest.raises(TypeError, match="Task timeout must be a number"):
            Task(name="x", compute=noop, timeout="1s")  # type: ignore[arg-type]

    def test_state_must_satisfy_task_state(self) -> None:
        """An initial_state without save/restore is a TypeError naming the field."""
        with pytest.raises(TypeError, match="Task initial_state must satisfy TaskState"):
            Task(name="x", compute=noop, initial_state=object())  # type: ignore[arg-type]

    def test_saved_state_must_be_bytes(self) -> None:
        """A saved_state that is not bytes is a TypeError naming the field."""
        with pytest.raises(TypeError, match="Task saved_state must be bytes"):
            Task(name="x", compute=noop, saved_state="abc")  # type: ignore[arg-type]

    def test_saved_state_without_initial_state_is_refused(self) -> None:
        """A saved_state with no initial_state to restore it into is a ValueError naming
        both fields; with one it is accepted."""
        with pytest.raises(ValueError, match="saved_state needs an initial_state"):
            Task(name="x", compute=noop, saved_state=b"41")
        assert Task(name="x", compute=noop, initial_state=Counter, saved_state=b"41").saved_state

    @pytest.mark.parametrize(
        "compute",
        [
            pytest.param(lambda resource, state: None, id="two parameters"),
            pytest.param(lambda resource, state, interrupt, extra: None, id="four parameters"),
            pytest.param(lambda r, s, i, *, flag: None, id="a required keyword"),
            pytest.param(functools.partial(noop, None), id="a partial leaving two"),
            pytest.param(_TwoParameters().compute, id="a bound method of two"),
            pytest.param(_TwoParameters(), id="a callable object of two"),
        ],
    )
    def test_a_compute_with_the_wrong_parameters_is_refused(self, compute: Any) -> None:
        """A compute that cannot take (resource, state, interrupt) is a TypeError at Task()
        that names the task and the parameters it has."""
        with pytest.raises(TypeError, match=r"Task 'x': compute must take three positional"):
            Task(name="x", compute=compute)

    @pytest.mark.parametrize(
        "compute",
        [
            pytest.param(noop, id="three parameters"),
            pytest.param(lambda *args: None, id="*args"),
            pytest.param(lambda r, *rest, **kw: None, id="one and *rest"),
            pytest.param(lambda r, s, i, extra=1, *, flag=2: None, id="with defaults"),
            pytest.param(functools.partial(_four, extra=1), id="a partial leaving three"),
            pytest.param(_ThreeParameters().compute, id="a bound method of three"),
            pytest.param(_ThreeParameters(), id="a callable object of three"),
            pytest.param(print, id="a builtin"),
        ],
    )
    def test_a_compute_that_takes_three_arguments_is_accepted(self, compute: Any) -> None:
        """Every callable that binds three positional arguments is a valid compute."""
        assert Task(name="x", compute=compute).compute is compute

    def test_async_and_sync_computes_are_told_apart(self) -> None:
        """async def (or an async __call__) runs on the loop; a plain def in a thread."""

        class AsyncCallable:
            async def __call__(self, r: object, s: TaskState, c: InterruptContext) -> int:
                return 1

        assert Task(name="a", compute=noop).is_async
        assert Task(name="b", compute=AsyncCallable()).is_async
        assert not Task(name="c", compute=lambda r, s, c: 1).is_async

    def test_frozen(self) -> None:
        """A task is an immutable description of work."""
        t = Task(name="x", compute=noop)
        with pytest.raises(AttributeError):
            t.name = "y"  # type: ignore[misc]


class TestNoOpTaskState:
    def test_save_and_restore(self) -> None:
        """NoOpTaskState saves b'' and ignores whatever it is asked to restore."""
        state = NoOpTaskState()
        assert state.save() == b""
        state.restore(b"anything")
        assert isinstance(state, TaskState)

    async def test_fresh_state_when_none(self, single: TaskExecutor) -> None:
        """A task without initial_state gets a fresh NoOpTaskState in each execution."""
        seen: list[TaskState] = []

        async def compute(r: object, state: TaskState, ctx: InterruptContext) -> None:
            seen.append(state)

        t = task(compute)
        await single.execute(t)
        await single.execute(t)
        assert all(isinstance(s, NoOpTaskState) for s in seen)
        assert seen[0] is not seen[1]


class TestPerExecutionState:
    async def test_factory_gives_each_execution_a_fresh_state(self, multi: TaskExecutor) -> None:
        """initial_state=Counter (the class) is called once per execution: a second execute
        starts from zero, and concurrent executions never share an object."""
        seen: list[Counter] = []
        both_running = asyncio.Event()

        async def count_to_three(r: object, s: Counter, ctx: InterruptContext) -> int:
            seen.append(s)
            while s.value < 3:
                s.value += 1
                await ctx.save_state(s)
            if len(seen) == 3:
                both_running.set()
            elif len(seen) == 2:
                await both_running.wait()  # the two later executions overlap
            return s.value

        t = task(count_to_three, initial_state=Counter)
        assert await multi.execute(t) == 3
        first = multi.submit_nowait(t)
        second = multi.submit_nowait(t, Priority.UI)
        assert (await first, await second) == (3, 3)
        assert len({id(s) for s in seen}) == 3

    async def test_lambda_factory(self, single: TaskExecutor) -> None:
        """Any zero-argument callable is a factory, called once per execution."""
        made: list[Counter] = []

        def make() -> Counter:
            made.append(Counter(10))
            return made[-1]

        async def value(r: object, s: Counter, ctx: InterruptContext) -> int:
            return s.value

        t = task(value, initial_state=make)
        assert await single.execute(t) == 10
        assert await single.execute(t) == 10
        assert len(made) == 2

    async def test_factory_must_return_a_task_state(self, single: TaskExecutor) -> None:
        """A factory returning something without save/restore is a TypeError at submit."""
        t = task(const(1), initial_state=lambda: object())
        with pytest.raises(TypeError, match=r"initial_state\(\) must return a TaskState"):
            single.submit_nowait(t)
        assert single.statistics().submitted == 0

    async def test_state_object_in_use_is_refused(self, single: TaskExecutor) -> None:
        """A state object used by a live execution cannot start a second one (ValueError
        naming the fix); once that execution ended, it can be used again."""
        gate = Gate()
        t = task(gate, initial_state=Counter())
        running = single.submit_nowait(t)
        await gate.started.wait()
        with pytest.raises(ValueError, match="in use by another live execution.*factory"):
            single.submit_nowait(t)
        with pytest.raises(ValueError, match="in use by another live execution"):
            await single.execute(task(const(1), initial_state=t.initial_state))
        gate.release.set()
        assert await running == "done"
        assert await single.execute(task(const(2), initial_state=t.initial_state)) == 2


class TestStateRestore:
    async def test_saved_state_is_restored_before_the_first_run(self, single: TaskExecutor) -> None:
        """saved_state is restored into initial_state, and that object goes to compute."""
        state = Counter()

        async def compute(r: object, s: Counter, ctx: InterruptContext) -> int:
            assert s is state
            return s.value

        t = task(compute, initial_state=state, saved_state=json.dumps(41).encode())
        assert await single.execute(t) == 41
        assert state.restored == [41]

    async def test_restore_failure(self, single: TaskExecutor) -> None:
        """A restore that raises: compute never runs, the caller gets StateRestoreError."""
        ran = False

        class Broken(Counter):
            def restore(self, data: bytes) -> None:
                raise ValueError("corrupt snapshot")

        async def compute(r: object, s: Counter, ctx: InterruptContext) -> None:
            nonlocal ran
            ran = True

        t = task(compute, initial_state=Broken(), saved_state=b"1")
        with pytest.raises(
            StateRestoreError, match="^failed to restore state: corrupt snapshot$"
        ) as info:
            await single.execute(t)
        assert isinstance(info.value.__cause__, ValueError)
        assert not ran
        assert single.statistics().failed == 1
        assert await single.execute(task(const("next"))) == "next"


class TestSaveState:
    async def test_save_state_none(self, single: TaskExecutor) -> None:
        """save_state(None) raises TypeError inside the compute, which reaches the caller."""

        async def compute(r: object, s: TaskState, ctx: InterruptContext) -> None:
            await ctx.save_state(None)  # type: ignore[arg-type]

        with pytest.raises(TypeError, match="save_state\\(\\) needs a TaskState"):
            await single.execute(task(compute))

    async def test_save_without_initial_state(self, single: TaskExecutor) -> None:
        """Saving a state in a task that has no initial_state is a ValueError naming the
        fix (its rerun could never restore the snapshot); saving the NoOpTaskState it was
        given stays harmless."""

        async def compute(r: object, s: TaskState, ctx: InterruptContext) -> None:
            await ctx.save_state(s)
            await ctx.save_state(Counter(5))

        with pytest.raises(ValueError, match=r"has no initial_state.*initial_state=") as info:
            await single.execute(task(compute, name="forgetful"))
        assert "'forgetful'" in str(info.value)

    async def test_save_failure(self, single: TaskExecutor) -> None:
        """A save() that raises becomes StateSaveError with the cause chained."""

        class Broken(Counter):
            def save(self) -> bytes:
                raise OSError("disk full")

        async def compute(r: object, s: Counter, ctx: InterruptContext) -> None:
            await ctx.save_state(s)

        with pytest.raises(StateSaveError, match="^failed to save state: disk full$") as info:
            await single.execute(task(compute, initial_state=Broken()))
        assert isinstance(info.value.__cause__, OSError)

    async def test_save_must_return_bytes(self, single: TaskExecutor) -> None:
        """A save() that returns something other than bytes is a StateSaveError."""

        class Wrong(Counter):
            def save(self) -> bytes:
                return "text"  # type: ignore[return-value]

        async def compute(r: object, s: Counter, ctx: InterruptContext) -> None:
            await ctx.save_state(s)

        with pytest.raises(StateSaveError, match="save\\(\\) must return bytes, got str"):
            await single.execute(task(compute, initial_state=Wrong()))

    async def test_save_after_the_run_ended(self, single: TaskExecutor) -> None:
        """A context kept past its run refuses to save, naming the task."""
        kept: list[InterruptContext] = []

        async def compute(r: object, s: TaskState, ctx: InterruptContext) -> None:
            kept.append(ctx)

        await single.execute(task(compute, name="leaky"))
        with pytest.raises(RuntimeError, match="after run 1 of task 'leaky' ended"):
            await kept[0].save_state(NoOpTaskState())


class TestHandle:
    async def test_handle_api(self, single: TaskExecutor) -> None:
        """A handle reports name, lane, status, done() and result() through its life."""
        gate = Gate(result=7)
        handle = await single.submit(task(gate, name="job"), Priority.LAST_EFFORT)
        assert (handle.name, handle.priority) == ("job", Priority.LAST_EFFORT)
        assert handle.status in (TaskStatus.QUEUED, TaskStatus.RUNNING)
        with pytest.raises(RuntimeError, match="not done yet"):
            handle.result()
        await gate.started.wait()
        assert handle.status is TaskStatus.RUNNING
        assert not handle.done()
        gate.release.set()
        assert await handle == 7
        assert handle.done()
        assert handle.result() == 7
        assert handle.status is TaskStatus.COMPLETED
        assert "completed" in repr(handle)

    async def test_snapshot(self, single: TaskExecutor) -> None:
        """handle.snapshot is None until a save, then the bytes of the latest save_state;
        a task's saved_state is the snapshot before any save."""
        gate = Gate()

        async def checkpoints(r: object, s: Counter, ctx: InterruptContext) -> None:
            for value in (1, 2):
                s.value = value
                await ctx.save_state(s)
            await gate(r, s, ctx)

        handle = single.submit_nowait(task(checkpoints, initial_state=Counter))
        assert handle.snapshot is None
        await gate.started.wait()
        assert handle.snapshot == b"2"
        gate.release.set()
        await handle
        assert handle.snapshot == b"2"
        resumed = single.submit_nowait(task(const(0), initial_state=Counter, saved_state=b"9"))
        assert resumed.snapshot == b"9"
        await resumed
        never = single.submit_nowait(task(const(0)))
        await never
        assert never.snapshot is None

    async def test_failed_handle(self, single: TaskExecutor) -> None:
        """result() on a failed task raises the task's exception; status is FAILED."""
        error = KeyError("boom")

        async def compute(r: object, s: TaskState, ctx: InterruptContext) -> None:
            raise error

        handle = single.submit_nowait(task(compute))
        with pytest.raises(KeyError) as info:
            await handle
        assert info.value is error
        assert handle.status is TaskStatus.FAILED
        with pytest.raises(KeyError):
            handle.result()

    async def test_priority_argument_overrides_task_priority(self, single: TaskExecutor) -> None:
        """execute/submit's priority names the lane, and the handle reports it."""
        handle = await single.submit(task(const(1), Priority.BACKGROUND), Priority.UI)
        assert handle.priority is Priority.UI
        assert await handle == 1

    async def test_submit_rejects_bad_priority_at_once(self, single: TaskExecutor) -> None:
        """A priority that is not a Priority is a ValueError from execute, submit and
        submit_nowait, before anything is queued."""
        t = task(const(1))
        with pytest.raises(ValueError, match="priority must be a Priority"):
            await single.execute(t, 3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="priority must be a Priority"):
            await single.submit(t, "UI")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="priority must be a Priority"):
            single.submit_nowait(t, 5)  # type: ignore[arg-type]
        assert single.statistics().submitted == 0

    async def test_submit_coerces_int_priority(self, single: TaskExecutor) -> None:
        """execute/submit accept the int of a Priority and queue in that lane."""
        handle = await single.submit(task(const(1), Priority.BACKGROUND), 0)  # type: ignore[arg-type]
        assert handle.priority is Priority.UI
        assert await handle == 1
        assert await single.execute(task(const(2)), 1) == 2  # type: ignore[arg-type]

    async def test_submit_rejects_non_tasks(self, single: TaskExecutor) -> None:
        """Anything but a Task is a TypeError."""
        with pytest.raises(TypeError, match="expected a Task"):
            await single.execute(lambda: 1)  # type: ignore[arg-type]

    async def test_result_when_awaited_by_many(self, single: TaskExecutor) -> None:
        """Several coroutines awaiting one handle all get the one result."""
        handle = single.submit_nowait(task(const("x")))
        assert await asyncio.gather(handle, handle) == ["x", "x"]
