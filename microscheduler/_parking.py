"""ParkingLot: the one waiting primitive of the package (as trio's ``ParkingLot``).

Coroutines *park* in a lot until someone *unparks* them, first in first out. The lanes'
submitters waiting for room, the idle workers and the supervisor task all wait in one.
A parked coroutine that is cancelled leaves the lot at once; one that is unparked and
cancelled before it resumes has lost the wake-up: a lot that must not lose one (a lane's
room) passes it on to the next parker; an idle worker's wake-up need not be.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ("ParkingLot",)


class ParkingLot:
    """A FIFO queue of parked coroutines: park, park at the head, unpark one, unpark all.

    Invariants:
        * Unparking removes a parker's future before settling it; a parker whose task is
          cancelled has its future cancelled at once (by ``Task.cancel()``) and removes it
          when it resumes, so unparking skips cancelled futures in between.
        * ``len(lot)`` is the number of coroutines parked and not cancelled right now.
    """

    __slots__ = ("_pass_on_lost", "waiters")

    def __init__(self, *, pass_on_lost: bool = False) -> None:
        #: The parked futures, first to wake first. Read-only outside the lot: its
        #: truthiness is the cheap "is anyone perhaps parked?" a hot path asks before
        #: calling :meth:`unpark_one` (a cancelled parker may still be in it).
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pass_on_lost = pass_on_lost

    def __len__(self) -> int:
        return sum(1 for waiter in self.waiters if not waiter.done())

    async def park(self, *, at_head: bool = False) -> None:
        """Wait until unparked; ``at_head`` goes before everyone already parked.

        A parker cancelled while parked leaves the lot at once. One unparked and then
        cancelled before it resumed has lost its wake-up: a lot built with
        ``pass_on_lost=True`` passes it to the next parker.
        """
        waiter = asyncio.get_running_loop().create_future()
        if at_head:
            self.waiters.appendleft(waiter)
        else:
            self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # unparked, then cancelled
                if self._pass_on_lost:
                    self.unpark_one()
            else:
                waiter.cancel()
                try:
                    self.waiters.remove(waiter)  # leave the lot at once
                except ValueError:
                    pass  # an unpark skipped it meanwhile
            raise

    def unpark_one(self) -> bool:
        """Wake the first parked coroutine; False if none is parked."""
        parked = self.waiters
        while parked:
            waiter = parked.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    def unpark_all(self) -> None:
        """Wake every parked coroutine."""
        parked = self.waiters
        while parked:
            waiter = parked.popleft()
            if not waiter.done():
                waiter.set_result(None)
