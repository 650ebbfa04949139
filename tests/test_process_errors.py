"""Process computes: what cannot travel between processes gets a clear error, never a hang."""

from __future__ import annotations

import functools
import pickle
from typing import Any

import pytest
from _process_computes import (
    LockedState,
    fails_to_load,
    raise_unpicklable,
    raise_unrebuildable,
    raise_value_error,
    return_unpicklable,
    whoami,
)

from microscheduler import Task, TaskExecutor, WorkerConfig, WorkerProcessError


def local_task(kind: str) -> Task[Any]:
    """A process task whose compute is defined inside a function (it cannot pickle)."""

    def compute(resource: object, state: object, interrupt: object) -> str:
        return kind

    return Task(name="local", compute=compute, runs_in="process")


class TestTaskRunsIn:
    def test_a_compute_that_does_not_pickle_is_refused_at_task(self) -> None:
        """A process compute that cannot pickle (a local function) is refused by Task()."""
        with pytest.raises(TypeError, match=r"runs_in='process' needs a compute that pickles"):
            local_task("x")

    def test_an_async_compute_cannot_run_in_a_process_or_a_thread(self) -> None:
        """``runs_in="process"``/``"thread"`` with an ``async def`` names the fix."""

        async def compute(resource: object, state: object, interrupt: object) -> None:
            return None

        for where in ("process", "thread"):
            with pytest.raises(TypeError, match=f"runs_in='{where}' needs a plain def"):
                Task(name="a", compute=compute, runs_in=where)  # type: ignore[arg-type]

    def test_a_plain_def_cannot_run_on_the_loop(self) -> None:
        """``runs_in="loop"`` with a plain ``def`` is refused."""
        with pytest.raises(TypeError, match="runs_in='loop' needs an async def"):
            Task(name="s", compute=whoami, runs_in="loop")

    def test_an_unknown_place_is_refused(self) -> None:
        """``runs_in`` must be one of its three values or None."""
        with pytest.raises(ValueError, match="runs_in must be 'loop', 'thread', 'process'"):
            Task(name="s", compute=whoami, runs_in="gpu")  # type: ignore[arg-type]

    def test_a_process_task_pickles_with_its_place(self) -> None:
        """A process Task survives pickling (Ray, multiprocessing) with ``runs_in`` kept."""
        task = Task(name="p", compute=functools.partial(whoami), runs_in="process")
        copy = pickle.loads(pickle.dumps(task))
        assert copy.runs_in == "process"
        assert copy.is_async is False

    def test_an_initializer_that_does_not_pickle_is_refused_at_config(self) -> None:
        """``process_initializer`` must pickle: a lambda is refused by WorkerConfig()."""
        with pytest.raises(TypeError, match="process_initializer must pickle"):
            WorkerConfig(process_initializer=lambda: None)


async def test_a_state_that_does_not_pickle_is_reported_to_the_caller() -> None:
    """A state object that cannot be pickled to the child fails the call with TypeError,
    and the worker's child serves the next run."""
    task = Task(name="locked", compute=whoami, runs_in="process", initial_state=LockedState)
    async with TaskExecutor(1) as executor:
        with pytest.raises(TypeError, match=r"task 'locked': its state cannot be pickled"):
            await executor.execute(task)
        pid, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
    assert pid > 0


async def test_a_result_that_does_not_pickle_is_reported_to_the_caller() -> None:
    """A compute returning something unpicklable fails its call with a TypeError naming
    the result; the same child serves the next run."""
    async with TaskExecutor(1) as executor:
        first, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
        task = Task(name="lock", compute=return_unpicklable, runs_in="process")
        with pytest.raises(TypeError, match=r"the result of its process compute cannot be pickled"):
            await executor.execute(task)
        again, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
    assert again == first


async def test_an_exception_that_does_not_pickle_is_reported_to_the_caller() -> None:
    """A compute raising an unpicklable exception fails its call with a TypeError naming
    the exception, with the child's traceback as its cause."""
    async with TaskExecutor(1) as executor:
        task = Task(name="raiser", compute=raise_unpicklable, runs_in="process")
        with pytest.raises(TypeError, match=r"the exception .* LockedError") as caught:
            await executor.execute(task)
    assert "raise_unpicklable" in str(caught.value.__cause__)


async def test_an_exception_raised_in_the_child_reaches_the_caller_with_its_traceback() -> None:
    """A picklable exception is re-raised in the caller, the child's traceback chained."""
    async with TaskExecutor(1) as executor:
        task = Task(name="raiser", compute=raise_value_error, runs_in="process")
        with pytest.raises(ValueError, match="bad input in") as caught:
            await executor.execute(task)
    assert "raise_value_error" in str(caught.value.__cause__)


async def test_a_failing_initializer_gives_worker_process_error() -> None:
    """A ``process_initializer`` that raises fails the run with ``WorkerProcessError``
    naming its exception; the executor still shuts down cleanly."""
    config = WorkerConfig(process_initializer=fails_to_load)
    async with TaskExecutor.from_config(config) as executor:
        task = Task(name="needs-model", compute=whoami, runs_in="process")
        with pytest.raises(WorkerProcessError, match="process_initializer raised.*no model file"):
            await executor.execute(task)


async def test_an_exception_that_does_not_unpickle_is_reported_to_the_caller() -> None:
    """An exception that pickles in the child but cannot be rebuilt in the executor fails
    its call with a TypeError saying so; the worker's child serves the next run."""
    async with TaskExecutor(1) as executor:
        task = Task(name="odd", compute=raise_unrebuildable, runs_in="process")
        with pytest.raises(TypeError, match=r"task 'odd': .* cannot be unpickled here"):
            await executor.execute(task)
        pid, _ = await executor.execute(Task(name="who", compute=whoami, runs_in="process"))
    assert pid > 0
