"""Executor lifecycle: start, shutdown, drain, async with, join (docs/design.md: lifecycle)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from _helpers import Gate, const, settle, state_of, task, wait_until

from microscheduler import (
    ExecutorNotStartedError,
    ExecutorShutdownError,
    InterruptContext,
    Priority,
    TaskExecutor,
    TaskStatus,
    WorkerConfig,
    WorkerType,
)

UI, BG = Priority.UI, Priority.BACKGROUND


def executor_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("microscheduler-")]


class TestStart:
    async def test_execute_before_start(self) -> None:
        """execute/submit before start raise ExecutorNotStartedError naming the fix."""
        executor = TaskExecutor()
        with pytest.raises(ExecutorNotStartedError, match=r"async with TaskExecutor"):
            await executor.execute(task(const(1)))
        with pytest.raises(ExecutorNotStartedError, match=r"await executor.start\(\)"):
            executor.submit_nowait(task(const(1)))

    def test_construct_outside_a_loop(self) -> None:
        """An executor can be built where no event loop runs, and started later."""
        executor = TaskExecutor(3)

        async def use() -> int:
            async with executor:
                return await executor.execute(task(const(3)))

        assert asyncio.run(use()) == 3

    def test_needs_an_asyncio_loop(self) -> None:
        """Under anyio's trio backend start() says an asyncio event loop is needed, and the
        executor can still be started under asyncio afterwards."""
        executor = TaskExecutor(2)

        async def under_trio() -> None:
            with pytest.raises(RuntimeError, match="^microscheduler needs an asyncio event loop"):
                async with executor:
                    pass

        anyio.run(under_trio, backend="trio")

        async def under_asyncio() -> int:
            async with executor:
                return await executor.execute(task(const(7)))

        assert anyio.run(under_asyncio, backend="asyncio") == 7

    async def test_start_twice(self, single: TaskExecutor) -> None:
        """Starting a started executor is a RuntimeError."""
        with pytest.raises(RuntimeError, match="already started"):
            await single.start()

    async def test_restart_after_shutdown(self) -> None:
        """A shut-down executor cannot be started again, nor entered with async with."""
        executor = TaskExecutor()
        await executor.start()
        await executor.shutdown()
        with pytest.raises(RuntimeError, match="cannot be restarted"):
            await executor.start()
        with pytest.raises(RuntimeError, match="cannot be restarted"):
            async with executor:
                pass

    async def test_repr_shows_state(self) -> None:
        """repr names the state, worker count and queue length."""
        executor = TaskExecutor(2)
        assert repr(executor).startswith("<TaskExecutor new workers=2 queued=0")
        async with executor:
            assert "running" in repr(executor)
        assert "closed" in repr(executor)


class TestShutdown:
    async def test_calls_after_shutdown(self) -> None:
        """After shutdown, execute/submit/submit_nowait raise ExecutorShutdownError."""
        executor = TaskExecutor()
        await executor.start()
        await executor.shutdown()
        with pytest.raises(ExecutorShutdownError, match="^executor is shutdown$"):
            await executor.execute(task(const(1)))
        with pytest.raises(ExecutorShutdownError):
            await executor.submit(task(const(1)))
        with pytest.raises(ExecutorShutdownError):
            executor.submit_nowait(task(const(1)))

    async def test_idempotent(self) -> None:
        """shutdown may be called many times, also concurrently."""
        executor = TaskExecutor()
        await executor.start()
        await asyncio.gather(executor.shutdown(), executor.shutdown(drain=True))
        await executor.shutdown()
        assert executor_tasks() == []

    async def test_without_drain(self) -> None:
        """drain=False: queued, running and preempted tasks all end with
        ExecutorShutdownError; the running compute sees reason "shutdown"."""
        executor = TaskExecutor(1)
        await executor.start()
        bg = Gate()
        preempted = executor.submit_nowait(task(bg, BG, name="preempted"))
        await bg.started.wait()
        ui = Gate()
        running = executor.submit_nowait(task(ui, UI, name="running"))
        await ui.started.wait()
        queued = executor.submit_nowait(task(const(1), UI, name="queued"))
        assert preempted.status is TaskStatus.PREEMPTED
        await executor.shutdown()
        for handle in (preempted, running, queued):
            with pytest.raises(ExecutorShutdownError):
                await handle
            assert handle.status is TaskStatus.CANCELLED
        assert ui.reasons == ["shutdown"]
        assert bg.attempts == [1]
        stats = executor.statistics()
        assert (stats.cancelled, stats.running, sum(stats.queued.values())) == (3, 0, 0)
        assert executor_tasks() == []

    async def test_drain_completes_queued_and_running_work(self) -> None:
        """drain=True: queued and running work completes; new calls fail at once."""
        executor = TaskExecutor(1)
        await executor.start()
        gate = Gate()
        running = executor.submit_nowait(task(gate, UI))
        await gate.started.wait()
        queued = [executor.submit_nowait(task(const(i))) for i in range(3)]
        stopping = asyncio.create_task(executor.shutdown(drain=True))
        await wait_until(lambda: state_of(executor) == "stopping", what="the drain to begin")
        with pytest.raises(ExecutorShutdownError):
            executor.submit_nowait(task(const(9)))
        gate.release.set()
        await stopping
        assert await asyncio.gather(running, *queued) == ["done", 0, 1, 2]

    async def test_drain_timeout(self) -> None:
        """drain=True with a timeout: work still unfinished then is shut down."""
        executor = TaskExecutor(1)
        await executor.start()
        gate = Gate()
        stuck = executor.submit_nowait(task(gate))
        await gate.started.wait()
        await executor.shutdown(drain=True, timeout=0.01)
        with pytest.raises(ExecutorShutdownError):
            await stuck
        assert gate.reasons == ["shutdown"]

    async def test_non_drain_call_cuts_a_drain_short(self) -> None:
        """A shutdown() without drain during a drain ends the drain at once."""
        executor = TaskExecutor(1)
        await executor.start()
        gate = Gate()
        stuck = executor.submit_nowait(task(gate))
        await gate.started.wait()
        draining = asyncio.create_task(executor.shutdown(drain=True))
        await wait_until(lambda: state_of(executor) == "stopping", what="the drain to begin")
        await executor.shutdown()
        await draining
        with pytest.raises(ExecutorShutdownError):
            await stuck

    async def test_waiting_for_room_ends_at_shutdown(self) -> None:
        """A submit waiting for lane room gets ExecutorShutdownError at shutdown."""
        executor = TaskExecutor.from_config(WorkerConfig(ui_queue_buffer_size=1))
        await executor.start()
        gate = Gate()
        executor.submit_nowait(task(gate, UI))
        await gate.started.wait()
        executor.submit_nowait(task(const(1), UI))
        waiting = asyncio.create_task(executor.submit(task(const(2), UI)))
        await wait_until(
            lambda: executor.statistics().waiting_submitters == 1, what="a waiting submitter"
        )
        await executor.shutdown()
        with pytest.raises(ExecutorShutdownError):
            await waiting

    async def test_shutdown_before_start(self) -> None:
        """Shutting down an executor that never started closes it."""
        executor = TaskExecutor()
        await executor.shutdown()
        with pytest.raises(RuntimeError):
            await executor.start()

    async def test_shutdown_from_inside_a_compute(self) -> None:
        """A compute may shut its own executor down; the shutdown completes and that
        compute's caller gets ExecutorShutdownError."""
        executor = TaskExecutor(1)
        await executor.start()

        async def stopper(resource: object, state: object, ctx: InterruptContext) -> None:
            await executor.shutdown()

        with pytest.raises(ExecutorShutdownError):
            await executor.execute(task(stopper))
        await executor.shutdown()
        assert executor_tasks() == []

    async def test_cancelled_shutdown_still_completes(self) -> None:
        """Cancelling a caller of shutdown() does not leave the executor half stopped."""
        executor = TaskExecutor(1)
        await executor.start()
        gate = Gate()
        executor.submit_nowait(task(gate))
        await gate.started.wait()
        stopping = asyncio.create_task(executor.shutdown(drain=True))
        await wait_until(lambda: state_of(executor) == "stopping", what="the drain to begin")
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
        gate.release.set()
        await executor.shutdown()
        assert executor_tasks() == []


class TestAsyncWith:
    async def test_normal_exit_drains(self) -> None:
        """Leaving async with normally lets queued work finish."""
        async with TaskExecutor(1) as executor:
            handles = [executor.submit_nowait(task(const(i))) for i in range(5)]
        assert [h.result() for h in handles] == list(range(5))

    async def test_exception_exit_does_not_drain(self) -> None:
        """Leaving async with by an exception shuts down at once; queued callers get
        ExecutorShutdownError and the exception propagates."""
        gate = Gate()
        with pytest.raises(KeyError):
            async with TaskExecutor(1) as executor:
                running = executor.submit_nowait(task(gate))
                await gate.started.wait()
                queued = executor.submit_nowait(task(const(1)))
                raise KeyError("boom")
        for handle in (running, queued):
            with pytest.raises(ExecutorShutdownError):
                handle.result()

    async def test_exit_drains_for_at_most_drain_timeout(self) -> None:
        """A never-ending task does not hang async with: after drain_timeout seconds it is
        shut down (its caller gets ExecutorShutdownError) and the block is left."""
        gate = Gate()
        async with TaskExecutor(1, drain_timeout=0.01) as executor:
            stuck = executor.submit_nowait(task(gate))
            await gate.started.wait()
        with pytest.raises(ExecutorShutdownError):
            stuck.result()
        assert gate.reasons == ["shutdown"]

    def test_drain_timeout_is_bounded_by_default(self) -> None:
        """An executor drains for 10 seconds at most unless told otherwise; None means no
        limit, and a config-built executor takes the keyword too."""
        assert TaskExecutor(1).drain_timeout == 10.0
        assert TaskExecutor(1, drain_timeout=None).drain_timeout is None
        config = WorkerConfig(ui_workers=1, background_workers=1)
        assert TaskExecutor.from_config(config, drain_timeout=2).drain_timeout == 2.0

    @pytest.mark.parametrize(("value", "error"), [(-1, ValueError), ("5", TypeError)])
    def test_drain_timeout_is_validated(self, value: object, error: type[Exception]) -> None:
        """A negative or non-numeric drain_timeout is refused at construction."""
        with pytest.raises(error, match="drain_timeout"):
            TaskExecutor(1, drain_timeout=value)  # type: ignore[arg-type]


class TestJoin:
    async def test_waits_for_queued_and_running_work(self, single: TaskExecutor) -> None:
        """join() returns once everything queued or running has ended, and the executor
        keeps running afterwards."""
        gate = Gate()
        running = single.submit_nowait(task(gate))
        await gate.started.wait()
        queued = [single.submit_nowait(task(const(i))) for i in range(3)]
        joiner = asyncio.create_task(single.join())
        await settle()
        assert not joiner.done()
        gate.release.set()
        await joiner
        assert all(handle.done() for handle in (running, *queued))
        stats = single.statistics()
        assert (sum(stats.queued.values()), stats.running, stats.completed) == (0, 0, 4)
        assert await single.execute(task(const("after"))) == "after"

    async def test_returns_at_once_when_idle(self) -> None:
        """join() on an idle, a not yet started or a shut-down executor returns at once."""
        executor = TaskExecutor(1)
        await executor.join()
        async with executor:
            await executor.join()
        await executor.join()

    async def test_waits_for_a_preempted_task_rerun(self, single: TaskExecutor) -> None:
        """A preempted task waiting for its rerun still counts: join() waits for the rerun."""
        gate = Gate()
        background = single.submit_nowait(task(gate))
        await gate.started.wait()
        gate.started.clear()
        joiner = asyncio.create_task(single.join())
        assert await single.execute(task(const("ui"), UI)) == "ui"
        await gate.started.wait()  # the rerun
        assert not joiner.done()
        gate.release.set()
        await joiner
        assert background.done() and gate.attempts == [1, 2]

    async def test_cancelled_join_leaves_the_work_alone(self, single: TaskExecutor) -> None:
        """Cancelling join() stops only the wait; the work goes on and a later join works."""
        gate = Gate()
        running = single.submit_nowait(task(gate))
        await gate.started.wait()
        joiner = asyncio.create_task(single.join())
        await settle()
        joiner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await joiner
        assert not running.done()
        gate.release.set()
        await single.join()
        assert running.result() == "done"


async def test_a_cancelled_drain_ends_as_shutdown_does() -> None:
    """Cancelling the task leaving `async with` while it drains (what Ctrl-C does under
    asyncio.run) interrupts the runs with reason "shutdown", waits for them and closes
    the resources before the cancellation propagates."""
    started = asyncio.Event()
    seen: list[tuple[str | None, bool]] = []
    exited: list[str] = []

    async def compute(resource: object, state: object, ctx: InterruptContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            seen.append((ctx.reason, ctx.is_interrupted()))

    @contextlib.asynccontextmanager
    async def resource(worker_id: int, worker_type: WorkerType) -> AsyncIterator[str]:
        yield "resource"
        exited.append("exited")

    executor = TaskExecutor(WorkerConfig(resource_factory=resource), drain_timeout=None)

    async def main() -> None:
        async with executor:
            executor.submit_nowait(task(compute))
            await started.wait()

    leaving = asyncio.create_task(main())
    await wait_until(lambda: state_of(executor) == "stopping", what="the drain")
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert seen == [("shutdown", True)]
    assert exited == ["exited"]
    assert state_of(executor) == "closed"


CTRL_C_CHILD = """
import asyncio
from microscheduler import TaskExecutor, Task

async def compute(resource, state, ctx):
    try:
        print("started", flush=True)
        await asyncio.Event().wait()
    finally:
        print(f"compute ended: reason={ctx.reason} interrupted={ctx.is_interrupted()}", flush=True)

EXECUTOR = None

async def main():
    global EXECUTOR
    EXECUTOR = TaskExecutor(1, drain_timeout=None)
    async with EXECUTOR:
        EXECUTOR.submit_nowait(Task(name="long", compute=compute))
        print("draining", flush=True)
    print("not reached", flush=True)

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
"""


def test_ctrl_c_while_draining_shuts_the_runs_down() -> None:
    """Ctrl-C (a real SIGINT) while `async with` drains under asyncio.run: the compute's
    run ends with reason "shutdown" before the KeyboardInterrupt comes out."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline(), child.stdout.readline()]
        assert sorted(lines) == ["draining\n", "started\n"]
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert out.splitlines() == [
        "compute ended: reason=shutdown interrupted=True",
        "KeyboardInterrupt",
    ], err
