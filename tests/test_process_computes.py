"""Process computes: real child processes, real signals (``Task(runs_in="process")``).

Every ordering comes from a child's own report through a Unix socket (a gate) or from the
child's state as the kernel shows it in ``/proc``; nothing waits on a sleep.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _process_computes import (
    Steps,
    exit_hard,
    ignore_sigterm_and_wait,
    loaded_model,
    save_when_interrupted,
    spin_until_released,
    state_of,
    steps_then_spin,
    wait_for_kill,
    whoami,
)
from _process_gates import ChildGate, children_left, ended, exists, proc_stat

from microscheduler import (
    Priority,
    SchedulerEvent,
    Task,
    TaskExecutor,
    WorkerConfig,
    WorkerProcessError,
)

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (a Unix socket path has at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="ms-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def gate(short_dir: Path) -> AsyncIterator[ChildGate]:
    async with ChildGate(short_dir) as child_gate:
        yield child_gate


def spinner(gate: ChildGate, **kwargs: Any) -> Task[Any]:
    """A Background process task that spins until the gate's release file exists."""
    compute = functools.partial(spin_until_released, gate.path, gate.release)
    return Task(name="spin", compute=compute, runs_in="process", **kwargs)


async def started_pid(gate: ChildGate) -> int:
    """The pid in the next ``started <pid> ...`` line a child reports."""
    line = await gate.next()
    assert line.startswith("started "), line
    return int(line.split()[1])


def wait_until_stopped(pid: int) -> None:
    """Return once the kernel shows ``pid`` stopped (SIGSTOP lands within microseconds)."""
    while proc_stat(pid)[0] != "T":
        pass


def burn_cpu(seconds: float) -> None:
    """Use ``seconds`` of this process's CPU time."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def assert_consistent(result: tuple[int, int, int]) -> None:
    """A spin's result: 1 + 2 + ... + steps, exactly."""
    _pid, steps, total = result
    assert steps > 0
    assert total == steps * (steps + 1) // 2


async def test_a_process_compute_runs_in_one_reused_child_process() -> None:
    """Two runs on one worker run in the same child, which is not the executor's process."""
    async with TaskExecutor(1) as executor:
        task = Task(name="who", compute=whoami, runs_in="process")
        first, _ = await executor.execute(task)
        second, _ = await executor.execute(task)
    assert first == second
    assert first != os.getpid()


async def test_process_initializer_result_is_every_process_computes_resource() -> None:
    """``process_initializer`` runs once in the child; its value is the compute's resource."""
    config = WorkerConfig(process_initializer=loaded_model)
    async with TaskExecutor.from_config(config) as executor:
        task = Task(name="who", compute=whoami, runs_in="process")
        pid, resource = await executor.execute(task)
        _, again = await executor.execute(task)
    assert resource == {"model": "loaded", "pid": pid}
    assert again is not resource and again == resource  # the same child's one resource


async def test_a_paused_loop_stands_still_and_is_continued_with_its_exact_result(
    gate: ChildGate,
) -> None:
    """A Background pure-Python loop that never polls is stopped while UI work runs (its
    CPU time stands still), then continued: one call, one child, an exact result."""
    observed: dict[str, Any] = {}

    async def look_at_the_child(_: object, __: object, ___: object) -> None:
        pid = observed["pid"]
        wait_until_stopped(pid)
        state, ticks = proc_stat(pid)
        burn_cpu(0.05)  # five clock ticks of ours; a running child would gain some too
        observed["during"] = (state, ticks, proc_stat(pid))

    async with TaskExecutor(1) as executor:
        handle = await executor.submit(spinner(gate))
        observed["pid"] = await started_pid(gate)
        await executor.execute(Task(name="ui", compute=look_at_the_child, priority=Priority.UI))
        gate.open_release()
        result = await handle
        stats = executor.statistics()
    state, ticks, (state_after, ticks_after) = observed["during"]
    assert (state, state_after) == ("T", "T")
    assert ticks_after == ticks
    assert result[0] == observed["pid"]
    assert_consistent(result)
    assert gate.lines.empty()  # it started once: the continuation recomputed nothing
    assert handle.attempt == 2
    assert stats.preempted == 1
    assert stats.wasted_runs == 0  # a pause loses nothing


async def test_urgent_process_work_runs_in_another_child_while_the_victim_is_paused(
    gate: ChildGate,
) -> None:
    """A UI process compute runs in a second child while the preempted one is stopped."""
    async with TaskExecutor(1) as executor:
        handle = await executor.submit(spinner(gate))
        victim = await started_pid(gate)
        look = functools.partial(state_of, victim)
        ui_pid, victim_state = await executor.execute(
            Task(name="ui", compute=look, runs_in="process", priority=Priority.UI)
        )
        gate.open_release()
        result = await handle
    assert victim_state == "T"
    assert ui_pid != victim
    assert result[0] == victim
    assert_consistent(result)


async def test_preempt_background_pauses_background_processes_while_urgent_work_runs(
    gate: ChildGate,
) -> None:
    """With dedicated workers and ``preempt_background``, a Background process is stopped
    while UI work runs and continued afterwards."""
    seen: list[str] = []

    async def ui(_: object, __: object, ___: object) -> None:
        wait_until_stopped(victim)
        seen.append(proc_stat(victim)[0])

    config = WorkerConfig(ui_workers=1, background_workers=1, preempt_background=True)
    async with TaskExecutor.from_config(config) as executor:
        handle = await executor.submit(spinner(gate))
        victim = await started_pid(gate)
        await executor.execute(Task(name="ui", compute=ui, priority=Priority.UI))
        gate.open_release()
        result = await handle
    assert seen == ["T"]
    assert result[0] == victim
    assert_consistent(result)
    assert handle.attempt == 2


async def test_a_pause_is_a_preemption_and_a_continuation_a_resumption(gate: ChildGate) -> None:
    """Events show the pause as ``preempted`` and the continuation as ``resumed``."""
    events: list[SchedulerEvent] = []
    config = WorkerConfig(on_event=events.append)
    async with TaskExecutor.from_config(config) as executor:
        handle = await executor.submit(spinner(gate))
        await started_pid(gate)
        await executor.execute(Task(name="ui", compute=whoami, runs_in="process", priority=0))
        gate.open_release()
        await handle
    spin = [event.kind for event in events if event.task == "spin"]
    assert spin == ["submitted", "started", "preempted", "resumed", "completed"]


async def test_cancelling_a_running_process_compute_ends_its_child(gate: ChildGate) -> None:
    """Cancelling a caller ends the child of its run; the next run gets a fresh one."""
    async with TaskExecutor(1) as executor:
        handle = await executor.submit(spinner(gate))
        pid = await started_pid(gate)
        handle.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handle
        await executor.join()
        assert not exists(pid)
        fresh, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
    assert fresh != pid


async def test_cancelling_a_paused_execution_continues_and_ends_its_child(
    gate: ChildGate,
) -> None:
    """A paused execution whose caller gives up has its stopped child ended and reaped."""
    release_ui = asyncio.Event()
    ui_started = asyncio.Event()

    async def ui(_: object, __: object, ___: object) -> None:
        ui_started.set()
        await release_ui.wait()

    async with TaskExecutor(1) as executor:
        handle = await executor.submit(spinner(gate))
        pid = await started_pid(gate)
        ui_handle = await executor.submit(Task(name="ui", compute=ui, priority=Priority.UI))
        await ui_started.wait()
        wait_until_stopped(pid)
        handle.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handle
        await ended(pid)
        release_ui.set()
        await ui_handle
    assert not exists(pid)  # reaped by the time shutdown returned


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(gate: ChildGate) -> None:
    """Cancelling a run whose compute ignores SIGTERM still ends its child (SIGKILL after
    the one-second grace) before the execution retires."""
    compute = functools.partial(ignore_sigterm_and_wait, gate.path)
    async with TaskExecutor(1) as executor:
        handle = await executor.submit(Task(name="stubborn", compute=compute, runs_in="process"))
        pid = await started_pid(gate)
        handle.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handle
        await executor.join()
        assert not exists(pid)


async def test_task_timeout_ends_the_child_of_a_process_compute(gate: ChildGate) -> None:
    """A ``Task.timeout`` ends the run's child; the caller gets ``TimeoutError``."""
    async with TaskExecutor(1) as executor:
        pid, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
        with pytest.raises(TimeoutError, match="Task.timeout"):
            await executor.execute(spinner(gate, timeout=0.1))
        await executor.join()
        assert not exists(pid)  # the child that ran whoami, reused for the spin


async def test_execute_timeout_ends_the_child_of_a_process_compute(gate: ChildGate) -> None:
    """``execute(timeout=)`` expiring ends the run's child."""
    async with TaskExecutor(1) as executor:
        pid, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
        with pytest.raises(TimeoutError):
            await executor.execute(spinner(gate), timeout=0.1)
        await executor.join()
        assert not exists(pid)


async def test_shutdown_returns_with_no_child_left(gate: ChildGate) -> None:
    """Shutdown ends a running child, a paused one and the idle ones, and reaps them all."""
    async with TaskExecutor(1) as executor:
        await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
        paused = await executor.submit(spinner(gate))
        paused_pid = await started_pid(gate)
        running = await executor.submit(spinner(gate, priority=Priority.UI))
        running_pid = await started_pid(gate)
        wait_until_stopped(paused_pid)
        await executor.shutdown()
    for handle in (paused, running):
        assert handle.done()
    assert not exists(paused_pid)
    assert not exists(running_pid)
    assert children_left() == []


async def test_a_child_killed_from_outside_gives_worker_process_error(gate: ChildGate) -> None:
    """A child killed with SIGKILL gives its caller ``WorkerProcessError`` naming the
    signal, and the worker's next run works in a fresh child."""
    async with TaskExecutor(1) as executor:
        handle = await executor.submit(
            Task(
                name="victim",
                compute=functools.partial(wait_for_kill, gate.path),
                runs_in="process",
            )
        )
        pid = await started_pid(gate)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerProcessError, match=r"'victim' was killed by signal SIGKILL"):
            await handle
        fresh, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
    assert fresh != pid


async def test_a_child_that_exits_by_itself_names_its_exit_code() -> None:
    """``os._exit(3)`` in a compute gives ``WorkerProcessError`` naming exit code 3."""
    async with TaskExecutor(1) as executor:
        task = Task(name="quits", compute=functools.partial(exit_hard, 3), runs_in="process")
        with pytest.raises(WorkerProcessError, match="exited with exit code 3"):
            await executor.execute(task)
        pid, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
    assert pid != os.getpid()


async def test_restart_mode_kills_the_child_and_reruns_from_the_snapshot(
    gate: ChildGate,
) -> None:
    """With ``process_preemption="restart"`` a preempted child is killed and the rerun
    starts, in a fresh child, from the last ``save_state_nowait`` snapshot."""
    config = WorkerConfig(process_preemption="restart")
    compute = functools.partial(steps_then_spin, gate.path, gate.release)
    task = Task(name="steps", compute=compute, runs_in="process", initial_state=Steps)
    async with TaskExecutor.from_config(config) as executor:
        handle = await executor.submit(task)
        line = await gate.next()
        first_pid = int(line.split()[1])
        await executor.execute(Task(name="ui", compute=whoami, runs_in="process", priority=0))
        assert not exists(first_pid)
        done, runs = await handle
    assert done == [0, 1, 2]  # steps 0 and 1 were not done again
    assert len(runs) == 1 and runs[0][1] == 2  # the rerun: attempt 2 ...
    assert runs[0][0] != first_pid  # ... in a fresh child


async def test_a_pause_does_not_wait_for_the_interrupt_grace(gate: ChildGate) -> None:
    """With an ``interrupt_grace`` (here far longer than the test may take), a process
    compute is still paused at once: a pause loses nothing, so there is no grace to give."""
    seen: list[str] = []

    async def ui(_: object, __: object, ___: object) -> None:
        wait_until_stopped(victim)
        seen.append("stopped")

    config = WorkerConfig(interrupt_grace=1000.0)
    async with TaskExecutor.from_config(config) as executor:
        handle = await executor.submit(spinner(gate))
        victim = await started_pid(gate)
        await executor.execute(Task(name="ui", compute=ui, priority=Priority.UI))
        gate.open_release()
        result = await handle
    assert seen == ["stopped"]
    assert_consistent(result)


async def test_restart_mode_lets_the_child_see_the_preemption_during_the_grace(
    gate: ChildGate,
) -> None:
    """With ``"restart"`` and an ``interrupt_grace``, the child's ``is_interrupted()``
    turns True with reason ``"preempted"``; what it saves then is restored for the rerun."""
    config = WorkerConfig(process_preemption="restart", interrupt_grace=1000.0)
    task = Task(
        name="polite",
        compute=functools.partial(save_when_interrupted, gate.path),
        runs_in="process",
        initial_state=Steps,
    )
    async with TaskExecutor.from_config(config) as executor:
        handle = await executor.submit(task)
        await started_pid(gate)
        await executor.execute(Task(name="ui", compute=whoami, runs_in="process", priority=0))
        result = await handle
    assert result == ["preempted"]
    assert handle.attempt == 2


async def test_pause_mode_is_refused_where_the_platform_cannot_stop_a_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``SIGSTOP`` (Windows) ``process_preemption="pause"`` is a ConfigError and
    ``"restart"`` is accepted."""
    from microscheduler import ConfigError

    monkeypatch.delattr(signal, "SIGSTOP")
    with pytest.raises(ConfigError, match="needs SIGSTOP, which this platform lacks"):
        WorkerConfig(process_preemption="pause")
    assert WorkerConfig(process_preemption="restart").process_preemption == "restart"


NEVER_SHUT_DOWN = """
import asyncio
from microscheduler import Task, TaskExecutor
from _process_computes import whoami

async def main():
    executor = TaskExecutor(1)
    await executor.start()
    pid, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
    print("child", pid, flush=True)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_a_program_that_never_shuts_down_its_executor_still_exits(tmp_path: Path) -> None:
    """An executor left running at interpreter exit does not keep the program alive
    waiting for its idle child (multiprocessing joins children at exit)."""
    script = tmp_path / "forgetful.py"
    script.write_text(NEVER_SHUT_DOWN)
    here = Path(__file__).resolve().parent
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here)])},
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[1])
    assert not exists(pid)
