"""Keys: joining a live execution, promotion, detaching handles, and snapshots that go
through the executor's snapshot store."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from _helpers import Counter, Gate, const, task, wait_until

from microscheduler import (
    InterruptContext,
    MemorySnapshotStore,
    Priority,
    SQLiteSnapshotStore,
    StateRestoreError,
    StateSaveError,
    Task,
    TaskExecutor,
    TaskHandle,
    TaskStatus,
    WorkerConfig,
)
from microscheduler.pytest_plugin import ExecutorFactory

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


class TestKeyValidation:
    @pytest.mark.parametrize("key", ["", 42, b"k", "x" * 257])
    def test_bad_keys_are_refused(self, key: Any) -> None:
        """A key that is not a non-empty str of at most 256 characters is a ValueError."""
        with pytest.raises(ValueError, match="Task key must be a non-empty str"):
            Task(name="t", compute=const(1), key=key)

    def test_a_256_character_key_is_fine(self) -> None:
        """The limit itself is allowed."""
        assert Task(name="t", compute=const(1), key="k" * 256).key == "k" * 256


class TestJoining:
    async def test_second_submit_joins_the_live_execution(self, single: TaskExecutor) -> None:
        """A submit of a live key runs nothing new: both callers get the one outcome."""
        gate = Gate(result="shared")
        first = single.submit_nowait(task(gate, key="doc"))
        await gate.started.wait()
        second = single.submit_nowait(task(gate, key="doc"))
        gate.release.set()
        assert await first == await second == "shared"
        assert gate.attempts == [1]
        stats = single.statistics()
        assert (stats.submitted, stats.joined, stats.completed) == (1, 1, 1)

    async def test_joiners_share_an_exception(self, single: TaskExecutor) -> None:
        """Every attached caller gets the same exception object."""

        async def broken(resource: object, state: object, ctx: InterruptContext) -> None:
            await asyncio.sleep(0)
            raise ValueError("boom")

        first = single.submit_nowait(task(broken, key="k"))
        second = single.submit_nowait(task(broken, key="k"))
        errors = await asyncio.gather(first, second, return_exceptions=True)
        assert isinstance(errors[0], ValueError) and errors[0] is errors[1]

    async def test_a_key_is_free_again_once_the_execution_ended(self, single: TaskExecutor) -> None:
        """After completion the next submit of the key starts a new execution."""
        assert await single.execute(task(const(1), key="k")) == 1
        assert await single.execute(task(const(2), key="k")) == 2
        assert single.statistics().joined == 0

    async def test_join_needs_no_room(self, small_background_lane: TaskExecutor) -> None:
        """Joining never waits for room in a full lane: it adds no entry."""
        executor = small_background_lane
        gate = Gate()
        running = executor.submit_nowait(task(gate))
        await gate.started.wait()
        queued = executor.submit_nowait(task(const("q"), key="k"))
        joined = executor.submit_nowait(task(const("q"), key="k"))  # the lane is full
        gate.release.set()
        assert await asyncio.gather(running, queued, joined) == ["done", "q", "q"]

    async def test_a_join_with_other_work_is_refused_naming_the_key(
        self, single: TaskExecutor
    ) -> None:
        """A submit of a live key with another compute or another name raises a ValueError
        naming the key, and the live execution goes on untouched."""
        gate = Gate(result="first")
        first = single.submit_nowait(task(gate, key="doc-1", name="index"))
        await gate.started.wait()
        with pytest.raises(ValueError, match="key 'doc-1' is live .* for task 'index'"):
            single.submit_nowait(task(const("other"), key="doc-1", name="index"))
        with pytest.raises(ValueError, match="key 'doc-1' is live"):
            await single.execute(task(gate, key="doc-1", name="summarise"))
        gate.release.set()
        assert await first == "first"
        assert single.statistics().joined == 0

    async def test_a_join_accepts_equal_partials_and_copies_of_one_compute(
        self, single: TaskExecutor
    ) -> None:
        """Partials of one function with equal arguments, and one factory's closures over
        equal values, are the same work and join; other arguments are other work."""
        gate = Gate()

        async def step(tag: str, resource: object, state: object, ctx: InterruptContext) -> str:
            await gate(resource, state, ctx)
            return tag

        first = single.submit_nowait(task(functools.partial(step, "a"), key="k"))
        await gate.started.wait()
        joined = single.submit_nowait(task(functools.partial(step, "a"), key="k"))
        with pytest.raises(ValueError, match="key 'k' is live"):
            single.submit_nowait(task(functools.partial(step, "b"), key="k"))
        with pytest.raises(ValueError, match="key 'k' is live"):
            single.submit_nowait(task(const("a"), key="k"))
        gate.release.set()
        assert await asyncio.gather(first, joined) == ["a", "a"]
        assert single.statistics().joined == 1


class TestDetaching:
    async def test_a_joined_handle_reads_the_execution_it_joined(
        self, single: TaskExecutor
    ) -> None:
        """A joined handle is a TaskHandle of its own that reports the shared execution:
        its task, key, lane (after a promotion too), attempt, status and snapshot."""
        gate = Gate(result="v")
        first = single.submit_nowait(task(gate, BG, key="k"))
        await gate.started.wait()
        joined = single.submit_nowait(task(gate, UI, key="k"))
        assert isinstance(joined, TaskHandle) and joined is not first
        assert joined.task is first.task and joined.name == "t" and joined.key == "k"
        assert (joined.priority, first.priority) == (UI, UI)  # the join promoted it
        assert (joined.attempt, joined.status, joined.snapshot) == (1, TaskStatus.RUNNING, None)
        with pytest.raises(AttributeError):
            joined.priority = BG  # type: ignore[misc]
        gate.release.set()
        assert await asyncio.gather(first, joined) == ["v", "v"]

    async def test_cancel_detaches_only_that_handle(self, single: TaskExecutor) -> None:
        """Cancelling one of two handles leaves the execution running for the other."""
        gate = Gate(result="kept")
        first = single.submit_nowait(task(gate, key="k"))
        await gate.started.wait()
        second = single.submit_nowait(task(gate, key="k"))
        assert first.cancel() is True
        with pytest.raises(asyncio.CancelledError):
            await first
        assert second.status is TaskStatus.RUNNING
        gate.release.set()
        assert await second == "kept"
        assert gate.reasons == [None]

    async def test_last_detach_cancels_the_execution(self, single: TaskExecutor) -> None:
        """When the last attached handle is cancelled, the run is interrupted."""
        gate = Gate()
        first = single.submit_nowait(task(gate, key="k"))
        await gate.started.wait()
        second = single.submit_nowait(task(gate, key="k"))
        first.cancel()
        second.cancel()
        await wait_until(lambda: single.statistics().cancelled == 1, what="the run ended")
        assert gate.reasons == ["cancelled"]


class TestPromotion:
    async def test_promote_moves_a_queued_execution_to_the_urgent_lane(
        self, single: TaskExecutor
    ) -> None:
        """A queued Background execution promoted to UI runs before other queued work."""
        gate = Gate()
        order: list[str] = []

        def recorder(name: str) -> Any:
            async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
                order.append(name)

            return compute

        blocker = single.submit_nowait(task(gate, UI))
        await gate.started.wait()
        le = single.submit_nowait(task(recorder("le"), LE))
        bg = single.submit_nowait(task(recorder("bg"), BG))
        assert bg.promote(UI) is True
        assert bg.priority is UI
        gate.release.set()
        await asyncio.gather(blocker, le, bg)
        assert order == ["bg", "le"]
        assert single.statistics().promoted == 1

    async def test_never_demotes(self, single: TaskExecutor) -> None:
        """promote() to the same or a less urgent lane returns False and changes nothing."""
        gate = Gate()
        blocker = single.submit_nowait(task(gate, UI))
        await gate.started.wait()
        handle = single.submit_nowait(task(const(1), LE))
        assert handle.promote(BG) is False
        assert handle.promote(LE) is False
        assert handle.priority is LE
        gate.release.set()
        await asyncio.gather(blocker, handle)
        assert single.statistics().promoted == 0

    async def test_a_more_urgent_join_promotes(self, single: TaskExecutor) -> None:
        """A UI submit of a key queued in Background promotes the execution."""
        gate = Gate()
        blocker = single.submit_nowait(task(gate, UI))
        await gate.started.wait()
        background = single.submit_nowait(task(const("v"), BG, key="k"))
        urgent = single.submit_nowait(task(const("v"), UI, key="k"))
        assert background.priority is UI
        gate.release.set()
        assert await asyncio.gather(blocker, background, urgent) == ["done", "v", "v"]
        stats = single.statistics()
        assert (stats.joined, stats.promoted) == (1, 1)

    async def test_a_promoted_running_run_is_not_preempted(self, single: TaskExecutor) -> None:
        """A running Background run promoted to LastEffort is no longer preemptible."""
        gate = Gate()
        running = single.submit_nowait(task(gate, BG))
        await gate.started.wait()
        assert running.promote(LE) is True
        ui = single.submit_nowait(task(const("ui"), UI))
        gate.release.set()
        assert await asyncio.gather(running, ui) == ["done", "ui"]
        assert single.statistics().preempted == 0
        assert gate.attempts == [1]


def stepper(steps: int, reached: asyncio.Event | None = None, at: int = -1) -> Any:
    """A compute counting ``steps`` checkpoints on its Counter; sets ``reached`` after the
    checkpoint numbered ``at`` and then waits to be cancelled."""

    async def compute(resource: object, state: Counter, ctx: InterruptContext) -> int:
        while state.value < steps:
            state.value += 1
            await ctx.save_state(state)
            if state.value == at and reached is not None:
                reached.set()
                await asyncio.Event().wait()
        return state.value

    return compute


class TestSnapshotStore:
    async def test_a_keyed_save_never_awaited_fails_the_run_naming_the_task(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """A keyed task whose save_state() was never awaited fails with a StateSaveError
        naming the task and the fix instead of completing; awaited saves are untouched."""
        store = MemorySnapshotStore()
        executor = await executor_factory(WorkerConfig(snapshot_store=store))

        async def forgetful(resource: object, state: Counter, ctx: InterruptContext) -> int:
            state.value += 1
            ctx.save_state(state)  # the mistake under test: no await
            return state.value

        with pytest.raises(StateSaveError, match="task 'indexer' .*without await") as caught:
            await executor.execute(
                task(forgetful, name="indexer", initial_state=Counter, key="doc")
            )
        assert "await interrupt.save_state(state)" in str(caught.value)
        assert await store.load("doc") is None  # the save never reached the store
        assert await executor.execute(task(stepper(2), initial_state=Counter, key="doc")) == 2

    async def test_keyed_saves_go_to_the_store_and_completion_deletes(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """Each save_state of a keyed task is in the store when it returns; the completed
        execution deletes its snapshot."""
        store = MemorySnapshotStore()
        executor = await executor_factory(WorkerConfig(snapshot_store=store))
        reached = asyncio.Event()
        handle = executor.submit_nowait(
            task(stepper(5, reached, 3), initial_state=Counter, key="k")
        )
        await reached.wait()
        assert await store.load("k") == b"3"
        handle.cancel()  # a cancelled execution keeps its snapshot
        await wait_until(lambda: executor.statistics().cancelled == 1, what="cancelled")
        assert await store.load("k") == b"3"
        resumed = await executor.execute(task(stepper(5), initial_state=Counter, key="k"))
        assert resumed == 5
        assert await store.load("k") is None

    async def test_a_new_executor_resumes_from_the_stored_snapshot(self, tmp_path: Any) -> None:
        """A second executor on the same SQLite file resumes a keyed task where the first
        one stopped (its first run restores the stored snapshot)."""
        path = str(tmp_path / "snapshots.db")
        reached = asyncio.Event()
        async with (
            SQLiteSnapshotStore(path) as store,
            TaskExecutor(WorkerConfig(snapshot_store=store)) as first,
        ):
            handle = first.submit_nowait(
                task(stepper(9, reached, 4), initial_state=Counter, key="k")
            )
            await reached.wait()
            handle.cancel()
        states: list[Counter] = []

        def state_factory() -> Counter:
            states.append(Counter())
            return states[-1]

        async with (
            SQLiteSnapshotStore(path) as store,
            TaskExecutor(WorkerConfig(snapshot_store=store)) as second,
        ):
            assert await second.execute(task(stepper(9), initial_state=state_factory, key="k")) == 9
        assert states[0].restored == [4]

    async def test_unkeyed_tasks_never_touch_the_store(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """Tasks without a key keep their snapshots in memory only."""
        saved: list[str] = []

        class Watching(MemorySnapshotStore):
            async def save(self, key: str, data: bytes) -> None:
                saved.append(key)
                await super().save(key, data)

        executor = await executor_factory(WorkerConfig(snapshot_store=Watching()))
        assert await executor.execute(task(stepper(3), initial_state=Counter)) == 3
        assert await executor.execute(task(stepper(3), initial_state=Counter, key="k")) == 3
        assert saved == ["k", "k", "k"]

    async def test_a_failing_store_write_is_a_state_save_error(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """A store whose save raises gives StateSaveError with the cause chained."""

        class Broken(MemorySnapshotStore):
            async def save(self, key: str, data: bytes) -> None:
                raise OSError("disk full")

        executor = await executor_factory(WorkerConfig(snapshot_store=Broken()))
        with pytest.raises(StateSaveError, match="disk full") as caught:
            await executor.execute(task(stepper(2), initial_state=Counter, key="k"))
        assert isinstance(caught.value.__cause__, OSError)

    async def test_a_failing_store_read_is_a_state_restore_error(
        self, executor_factory: ExecutorFactory
    ) -> None:
        """A store whose load raises fails the first run with StateRestoreError."""

        class Broken(MemorySnapshotStore):
            async def load(self, key: str) -> bytes | None:
                raise OSError("unreadable")

        executor = await executor_factory(WorkerConfig(snapshot_store=Broken()))
        with pytest.raises(StateRestoreError, match="unreadable") as caught:
            await executor.execute(task(stepper(2), initial_state=Counter, key="k"))
        assert isinstance(caught.value.__cause__, OSError)
