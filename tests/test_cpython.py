"""The CPython (and anyio) private names the core relies on, all used in _cpython.py:
these tests fail if an interpreter or anyio release changes their shape."""

from __future__ import annotations

import asyncio

import anyio

from microscheduler._cpython import (
    cancel_unattributed,
    forget_unretrieved,
    future_unretrieved,
    running_loop_or_none,
)


def test_running_loop_or_none_is_none_without_a_loop() -> None:
    """Outside a loop the private getter answers None instead of raising."""
    assert running_loop_or_none() is None


async def test_running_loop_or_none_is_the_running_loop() -> None:
    """Inside a coroutine it is the loop running it."""
    assert running_loop_or_none() is asyncio.get_running_loop()


async def test_an_unretrieved_failure_is_seen_and_can_be_forgotten() -> None:
    """A failed future nobody asked is flagged; asking or forgetting clears the flag."""
    loop = asyncio.get_running_loop()
    asked, forgotten = loop.create_future(), loop.create_future()
    for future in (asked, forgotten):
        future.set_exception(ValueError("boom"))
        assert future_unretrieved(future)
    asked.exception()
    forget_unretrieved(forgotten)
    assert not future_unretrieved(asked) and not future_unretrieved(forgotten)


async def test_cancel_unattributed_names_no_task_and_restores_the_current_one() -> None:
    """The cancelled scope's host gets anyio's own cancellation (which its scope
    recognises and swallows), its message names no task, and the caller is still the
    current task afterwards."""
    messages: list[str] = []
    entered = asyncio.Event()
    scope = anyio.CancelScope()

    async def host() -> str:
        with scope:
            entered.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError as exc:
                messages.append(str(exc))
                raise
        return "swallowed by its scope"

    hosted = asyncio.create_task(host())
    await entered.wait()
    me = asyncio.current_task()
    cancel_unattributed(scope, asyncio.get_running_loop(), hosted)
    assert asyncio.current_task() is me
    assert await hosted == "swallowed by its scope"
    assert len(messages) == 1
    assert messages[0].startswith("Cancelled via cancel scope")
    assert " by " not in messages[0]


async def test_cancel_unattributed_from_the_host_itself_defers_to_its_next_await() -> None:
    """A run cancelling its own scope goes on to its next await, where anyio's
    cancellation ends it and its scope swallows it, as anyio does on its own."""
    reached: list[str] = []
    with anyio.CancelScope() as scope:
        cancel_unattributed(scope, asyncio.get_running_loop(), asyncio.current_task())
        reached.append("after the cancel")
        await asyncio.sleep(0)
        reached.append("after the await")
    assert reached == ["after the cancel"]
    assert scope.cancelled_caught
