"""pytest plugin: ready-made, leak-checked executors for tests.

Installed with microscheduler and loaded through the ``pytest11`` entry point (disable it with
``-p no:microscheduler``). It adds two function-scoped async fixtures:

- ``executor`` — a started single-processor :class:`~microscheduler.TaskExecutor`.
- ``executor_factory`` — an async callable; ``await executor_factory(config_or_count)``
  returns a started executor built from a :class:`~microscheduler.WorkerConfig` or a processor
  count.

At teardown every executor they made is shut down. If one still had work queued or running
and the test had not shut it down itself, the test errors at teardown with a message naming
the leftovers: a test should await (or cancel and await) everything it starts.

The fixtures are pytest-asyncio fixtures, so they work in its ``auto`` mode and, in ``strict``
mode, with tests marked ``@pytest.mark.asyncio``; they run in the event loop that
``asyncio_default_fixture_loop_scope`` selects (the test's own loop by default)::

    from microscheduler import Priority, Task


    async def test_ui_answers(executor):
        task = Task(name="ping", compute=lambda *_: "pong", priority=Priority.UI)
        assert await executor.execute(task) == "pong"


    async def test_two_workers(executor_factory):
        executor = await executor_factory(2)
        assert executor.statistics().running == 0

Loading this module changes nothing for tests that do not use the fixtures: it defines no
hooks and no autouse fixtures, a fixture of the same name in a ``conftest.py`` or test module
takes precedence, and it loads without pytest-asyncio too (the fixtures then need another
async plugin to run).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

import pytest

from microscheduler import TaskExecutor, WorkerConfig

__all__ = ("ExecutorFactory", "executor", "executor_factory")

_F = TypeVar("_F", bound=Callable[..., Any])


class ExecutorFactory(Protocol):
    """The type of the ``executor_factory`` fixture, for annotating tests."""

    async def __call__(
        self, config: WorkerConfig | int = 1, /, *, logger: Any = None
    ) -> TaskExecutor:
        """Build and start an executor; it is shut down when the test ends.

        Args:
            config: A :class:`~microscheduler.WorkerConfig`, or a processor count as taken by
                :class:`~microscheduler.TaskExecutor` (``1`` is single-processor mode).
            logger: A structlog logger for the executor; the library's own by default.

        Returns:
            The started executor.
        """
        ...


def _async_fixture(function: _F) -> _F:
    # pytest-asyncio's marker makes the fixture run in strict mode too; without the plugin
    # installed the fixtures stay plain ones, so merely loading this module never fails.
    try:
        import pytest_asyncio
    except ImportError:
        return pytest.fixture(function)  # type: ignore[return-value]
    return pytest_asyncio.fixture(function)  # type: ignore[return-value]


@_async_fixture
async def executor_factory() -> AsyncIterator[ExecutorFactory]:
    """Build started executors that are shut down, and checked for leftovers, at teardown.

    Yields:
        An async callable: ``await executor_factory(config_or_count)`` returns a started
        :class:`~microscheduler.TaskExecutor`.
    """
    created: list[TaskExecutor] = []

    async def factory(config: WorkerConfig | int = 1, /, *, logger: Any = None) -> TaskExecutor:
        if isinstance(config, WorkerConfig):
            built = TaskExecutor.from_config(config, logger=logger)
        else:
            built = TaskExecutor(config, logger=logger)
        await built.start()
        created.append(built)
        return built

    yield factory

    leftovers = [
        _describe_leftovers(number, len(created), built)
        for number, built in enumerate(created, start=1)
    ]
    async with contextlib.AsyncExitStack() as stack:
        for built in created:
            stack.push_async_callback(built.shutdown)
    problems = [text for text in leftovers if text]
    if problems:
        pytest.fail(
            "microscheduler: the test ended with work still in its executor:\n"
            + "\n".join(problems)
            + "\nawait every task the test starts (or cancel and await it), or shut the "
            "executor down, before the test returns",
            pytrace=False,
        )


@_async_fixture
async def executor(executor_factory: ExecutorFactory) -> TaskExecutor:
    """A started single-processor executor, shut down and leak-checked at teardown.

    Args:
        executor_factory: The ``executor_factory`` fixture that builds and owns it.

    Returns:
        A started ``TaskExecutor(1)``.
    """
    return await executor_factory(1)


def _describe_leftovers(number: int, total: int, built: TaskExecutor) -> str:
    stats = built.statistics()
    queued = sum(stats.queued.values())
    if not queued and not stats.running:
        return ""
    lanes = ", ".join(f"{priority}: {count}" for priority, count in stats.queued.items())
    return (
        f"  executor {number} of {total} ({built!r}): {stats.running} running, "
        f"{queued} queued ({lanes})"
    )
