"""Shared fixtures and helpers for the microscheduler test suite."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from collections.abc import Callable, Iterator, Mapping

import pytest

from microscheduler import TaskExecutor, WorkerConfig
from microscheduler.pytest_plugin import ExecutorFactory
from microscheduler.testing import sync_computes_running

_TASK_PREFIX = "microscheduler-"

# Which event loop runs the async tests and fixtures: MICROSCHEDULER_TEST_LOOP=asyncio (the
# default, pytest-asyncio's own), uvloop, or eager (asyncio with asyncio.eager_task_factory,
# Python 3.12+, where a new task runs its first step at once, inside create_task). CI runs
# the suite under each; an unknown or unavailable loop is a usage error, never a skip.
TEST_LOOP = os.environ.get("MICROSCHEDULER_TEST_LOOP", "asyncio")


def _eager_event_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    return loop


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            raise pytest.UsageError(f"MICROSCHEDULER_TEST_LOOP=uvloop needs uvloop: {exc}") from exc
        return uvloop.new_event_loop
    if name == "eager":
        if not hasattr(asyncio, "eager_task_factory"):
            raise pytest.UsageError("MICROSCHEDULER_TEST_LOOP=eager needs Python 3.12 or later")
        return _eager_event_loop
    raise pytest.UsageError(
        f"MICROSCHEDULER_TEST_LOOP must be asyncio, uvloop or eager, got {name!r}"
    )


if TEST_LOOP != "asyncio":
    _LOOP_FACTORIES = {TEST_LOOP: _loop_factory(TEST_LOOP)}

    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
        """Run every async test and fixture on the loop MICROSCHEDULER_TEST_LOOP names."""
        return _LOOP_FACTORIES


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Collect garbage before a failure report is built.

    On CPython 3.11.7 the GC finalising a leftover asyncio task inside pytest's
    ``ast.parse`` (used to build the report) crashes the whole run (gh-106905); collecting
    first keeps one failure from hiding all the others.
    """
    if call.excinfo is not None:
        gc.collect()
    return (yield)


def _live_tasks() -> list[asyncio.Task[object]]:
    """Every asyncio task still alive in this process, whatever loop it belongs to."""
    registry = getattr(asyncio.tasks, "_all_tasks", None)  # CPython 3.11: a WeakSet
    if registry is not None:
        return list(registry)
    return [obj for obj in gc.get_objects() if isinstance(obj, asyncio.Task)]


def _pending_executor_tasks() -> list[asyncio.Task[object]]:
    """The executor's own asyncio tasks (workers, shutdown) that have not finished."""
    return [
        task
        for task in _live_tasks()
        if task.get_name().startswith(_TASK_PREFIX) and not task.done()
    ]


# A leaked task is reported by the test that leaked it only, not again by every later test.
_reported: weakref.WeakSet[asyncio.Task[object]] = weakref.WeakSet()
_busy_threads_reported = [0]


@pytest.fixture(autouse=True)
def _no_leftover_executor_work(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves an executor task pending or a sync compute running.

    Checked after the test's other fixtures are torn down but before pytest-asyncio closes
    the test's event loop (which would cancel a leftover task and hide it): no asyncio
    task named ``microscheduler-*`` may be unfinished, and no sync compute may still be
    running in a worker thread (after shutdown nothing of an executor is left behind).
    """
    for name in request.fixturenames:
        if name.startswith("_") and name.endswith("_scoped_runner"):
            # Set up the loop's runner first so that it is torn down after this check.
            request.getfixturevalue(name)
    yield
    tasks = [task for task in _pending_executor_tasks() if task not in _reported]
    _reported.update(tasks)
    busy = sync_computes_running()
    new_busy = busy - _busy_threads_reported[0]
    _busy_threads_reported[0] = busy
    problems = [f"asyncio task {task.get_name()!r} is still pending: {task!r}" for task in tasks]
    if new_busy > 0:
        problems.append(f"{new_busy} sync compute(s) still running in a worker thread")
    if problems:
        pytest.fail("executor work left behind by this test:\n  " + "\n  ".join(problems))


# One fixture per executor configuration that tests share. Each is built by the plugin's
# executor_factory, which shuts it down at teardown (not drained) and fails a test that left
# work queued or running in it. Tests of one configuration of their own call
# executor_factory themselves.


@pytest.fixture
async def single(executor_factory: ExecutorFactory) -> TaskExecutor:
    """A started single-processor executor."""
    return await executor_factory(1)


@pytest.fixture
async def multi(executor_factory: ExecutorFactory) -> TaskExecutor:
    """A started executor with one UI worker and two background workers."""
    return await executor_factory(WorkerConfig(ui_workers=1, background_workers=2))


@pytest.fixture
async def multi_preempt(executor_factory: ExecutorFactory) -> TaskExecutor:
    """As ``multi``, but urgent work preempts every Background run (preempt_background)."""
    config = WorkerConfig(ui_workers=1, background_workers=2, preempt_background=True)
    return await executor_factory(config)


@pytest.fixture
async def grace(executor_factory: ExecutorFactory) -> TaskExecutor:
    """A single-processor executor whose preempted runs have a grace that never expires
    during a test: they are interrupted but not cancelled."""
    return await executor_factory(WorkerConfig(interrupt_grace=300.0))


@pytest.fixture
async def small_background_lane(executor_factory: ExecutorFactory) -> TaskExecutor:
    """A single-processor executor whose Background lane holds one new task."""
    return await executor_factory(WorkerConfig(background_buffer_size=1))
