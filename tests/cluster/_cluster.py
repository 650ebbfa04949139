"""Helpers for the cluster tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

NAMESPACE = "microscheduler-tests"


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    """Await ``check()`` until it is true (a bounded poll of remote state, ordering nothing)."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - remote state: no event to await
            await asyncio.sleep(0.02)
    assert await check(), what


async def local_only(resource: object, state: object, interrupt: object) -> str:
    """A compute pickled by reference to this module, which Ray's workers cannot import."""
    return "unreachable"
