"""Shared fixtures and helpers for the microscheduler test suite."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator

import pytest

from microscheduler import TaskExecutor, WorkerConfig


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


@pytest.fixture
async def single() -> AsyncIterator[TaskExecutor]:
    """A started single-processor executor, shut down (not drained) at teardown."""
    executor = TaskExecutor(1)
    await executor.start()
    try:
        yield executor
    finally:
        await executor.shutdown()


@pytest.fixture
async def multi() -> AsyncIterator[TaskExecutor]:
    """A started executor with one UI worker and two background workers."""
    executor = TaskExecutor.from_config(WorkerConfig(ui_workers=1, background_workers=2))
    await executor.start()
    try:
        yield executor
    finally:
        await executor.shutdown()
