"""pytest plugin: ready-made, leak-checked executors for tests.

Installed with microscheduler and loaded through the ``pytest11`` entry point (disable it with
``-p no:microscheduler``). Install it with the ``pytest`` extra
(``pip install 'microscheduler[pytest]'``), which brings pytest-asyncio to run the fixtures.
It adds two function-scoped async fixtures:

- ``executor`` — a started single-processor :class:`~microscheduler.TaskExecutor`.
- ``executor_factory`` — an async callable; ``await executor_factory(config_or_count)``
  returns a started executor built from a :class:`~microscheduler.WorkerConfig` or a processor
  count.

At teardown every executor they made is shut down. If one still had work queued or running
and the test had not shut it down itself, the test errors at teardown with a message naming
the leftovers: a test should await (or cancel and await) everything it starts.

The fixtures are pytest-asyncio fixtures and work in both of its modes. In ``auto`` mode
every ``async def`` test is an asyncio test anyway; in ``strict`` mode an ``async def`` test
that requests ``executor`` or ``executor_factory`` is marked ``@pytest.mark.asyncio`` by this
plugin (it can only be an asyncio test), so the same test module runs in either mode. The
fixtures run in the event loop that ``asyncio_default_fixture_loop_scope`` selects (the
test's own loop by default)::

    from microscheduler import Priority, Task


    async def test_ui_answers(executor):
        task = Task(name="ping", compute=lambda *_: "pong", priority=Priority.UI)
        assert await executor.execute(task) == "pong"


    async def test_two_workers(executor_factory):
        executor = await executor_factory(2)
        assert executor.statistics().running == 0

Loading this module changes nothing for tests that do not use the fixtures: its one hook only
marks async tests that request them, it has no autouse fixtures, a fixture of the same name
in a ``conftest.py`` or test module takes precedence, and it loads without pytest-asyncio too
(a test that requests the fixtures then fails, saying to install the ``pytest`` extra).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, Protocol, TypeVar

import pytest

from microscheduler import TaskExecutor, WorkerConfig

__all__ = ("ExecutorFactory", "executor", "executor_factory")

_F = TypeVar("_F", bound=Callable[..., Any])

_FIXTURES = frozenset({"executor", "executor_factory"})

_NO_PYTEST_ASYNCIO = (
    "microscheduler's executor fixtures run on pytest-asyncio, which is not installed: "
    "pip install 'microscheduler[pytest]'"
)


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
    # pytest-asyncio's decorator makes the fixture run in strict mode too. Without it the
    # module must still load (it is loaded into every pytest run); a test that requests
    # the fixture then fails saying what to install, not with pytest's generic complaint
    # about an async fixture.
    try:
        import pytest_asyncio
    except ImportError:

        def missing() -> None:
            pytest.fail(_NO_PYTEST_ASYNCIO, pytrace=False)

        missing.__name__ = missing.__qualname__ = function.__name__
        missing.__doc__ = function.__doc__
        return pytest.fixture(missing)  # type: ignore[return-value]
    return pytest_asyncio.fixture(function)  # type: ignore[return-value]


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, Any]:
    """Mark an ``async def`` test that requests this plugin's fixtures as an asyncio test.

    In pytest-asyncio's strict mode an unmarked ``async def`` test is not run at all; one
    that asks for an executor can only mean asyncio. ``trylast`` makes this wrapper run
    inside pytest-asyncio's own, so the mark is there when pytest-asyncio looks for it.
    """
    result = yield
    if not inspect.iscoroutinefunction(obj) or not collector.config.pluginmanager.hasplugin(
        "asyncio"
    ):
        return result
    for item in result if isinstance(result, list) else [result]:
        if (
            isinstance(item, pytest.Function)
            and _FIXTURES.intersection(item.fixturenames)
            and item.get_closest_marker("asyncio") is None
        ):
            item.add_marker(pytest.mark.asyncio)
    return result


@_async_fixture
async def executor_factory() -> AsyncIterator[ExecutorFactory]:
    """Build started executors that are shut down, and checked for leftovers, at teardown.

    Yields:
        An async callable: ``await executor_factory(config_or_count)`` returns a started
        :class:`~microscheduler.TaskExecutor`.
    """
    created: list[TaskExecutor] = []

    async def factory(config: WorkerConfig | int = 1, /, *, logger: Any = None) -> TaskExecutor:
        built = TaskExecutor(config, logger=logger)  # an int or a WorkerConfig
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
