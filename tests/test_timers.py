"""The supervisor task's deadline heap (microscheduler._timers)."""

from __future__ import annotations

import asyncio
from typing import Any

from microscheduler._logging import logger
from microscheduler._runtime import Runtime
from microscheduler._timers import Timers


class _FrozenClockLoop(asyncio.SelectorEventLoop):
    """A loop whose clock never moves, as a millisecond clock (uvloop's) stands still
    within one millisecond: a deadline scheduled "in 0 s" is due at once."""

    def time(self) -> float:
        return 1000.0


async def _run_until(done: Any, what: str) -> None:
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"gave up waiting for {what}")


def test_an_action_scheduled_by_a_due_action_waits_for_a_later_pass() -> None:
    """An action that a due action schedules, due at once, runs after the loop's ready
    work has had its turn, not in the same pass (aging's second step depends on it)."""
    order: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = Timers()
        timers.start(Runtime(loop=loop, log=logger.bind(), debug=False, events=None))

        def second() -> None:
            order.append("second")

        def first() -> None:
            order.append("first")
            timers.schedule(0.0, second)
            loop.call_soon(order.append, "ready work")

        timers.schedule(0.0, first)
        await _run_until(lambda: "second" in order, "the second action")
        await timers.stop()

    loop = _FrozenClockLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert order == ["first", "ready work", "second"]
