"""The suite runs on the event loop CI asks for (MICROSCHEDULER_TEST_LOOP, see conftest.py).

CI runs the core suite under asyncio, uvloop and asyncio with ``eager_task_factory``; this
test fails if a run meant for one of them silently ran on another.
"""

from __future__ import annotations

import asyncio
import os

import pytest

TEST_LOOP = os.environ.get("MICROSCHEDULER_TEST_LOOP", "asyncio")


async def test_async_tests_run_on_the_requested_event_loop() -> None:
    """The running loop is uvloop's, eager asyncio's or plain asyncio's, as requested."""
    loop = asyncio.get_running_loop()
    module = type(loop).__module__.partition(".")[0]
    factory = loop.get_task_factory()
    if TEST_LOOP == "uvloop":
        assert module == "uvloop"
    elif TEST_LOOP == "eager":
        assert (module, factory) == ("asyncio", asyncio.eager_task_factory)  # type: ignore[attr-defined]
    else:
        assert (module, factory) == ("asyncio", None)


@pytest.fixture
async def fixture_loop() -> asyncio.AbstractEventLoop:
    """The loop an async fixture runs on."""
    return asyncio.get_running_loop()


async def test_async_fixtures_run_on_the_test_s_event_loop(
    fixture_loop: asyncio.AbstractEventLoop,
) -> None:
    """An async fixture runs on the same (requested) loop as the test that uses it."""
    assert fixture_loop is asyncio.get_running_loop()
