"""IdleWorkers: the idle workers serving a set of lanes, as a queue of their wake-ups."""

from __future__ import annotations

import asyncio
import collections

__all__ = ("IdleWorkers",)


class IdleWorkers:
    """The idle workers serving a set of lanes: a queue of their wake-ups.

    A wake-up may find nothing to do (another worker took the work first): a woken worker
    always re-checks its lanes. A busy worker finds new work when it next checks, so no
    wake-up is ever needed for it.
    """

    __slots__ = ("_idle",)

    def __init__(self) -> None:
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()

    def __len__(self) -> int:
        return sum(1 for waiter in self._idle if not waiter.done())

    async def wait(self) -> None:
        """Sleep until :meth:`wake_one` or :meth:`wake_all` is called."""
        waiter = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            await waiter
        finally:
            waiter.cancel()

    def wake_one(self) -> None:
        """Wake one idle worker, if any."""
        idle = self._idle
        while idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_all(self) -> None:
        """Wake every idle worker."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
