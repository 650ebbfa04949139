"""The parking lot: the one waiting primitive behind lanes, idle workers and the
supervisor task."""

from __future__ import annotations

import asyncio

from microscheduler._parking import ParkingLot


async def _parked(lot: ParkingLot, order: list[str], name: str, *, at_head: bool = False) -> None:
    await lot.park(at_head=at_head)
    order.append(name)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_unpark_one_wakes_the_first_parked_and_at_head_goes_first() -> None:
    """Parkers wake first in, first out; one parked at the head goes before all of them."""
    lot = ParkingLot()
    order: list[str] = []
    tasks = [asyncio.create_task(_parked(lot, order, name)) for name in ("a", "b")]
    await _settle()
    tasks.append(asyncio.create_task(_parked(lot, order, "head", at_head=True)))
    await _settle()
    assert len(lot) == 3
    for _ in range(3):
        assert lot.unpark_one()
        await _settle()
    assert order == ["head", "a", "b"]
    assert not lot.unpark_one()
    await asyncio.gather(*tasks)


async def test_a_cancelled_parker_leaves_at_once_and_is_skipped() -> None:
    """A cancelled parker is not counted and never takes a wake-up meant for another."""
    lot = ParkingLot()
    order: list[str] = []
    first = asyncio.create_task(_parked(lot, order, "first"))
    second = asyncio.create_task(_parked(lot, order, "second"))
    await _settle()
    first.cancel()  # its future is cancelled now; it leaves the lot when it resumes
    assert len(lot) == 1
    assert lot.unpark_one()  # skips the cancelled one
    await asyncio.gather(first, second, return_exceptions=True)
    assert order == ["second"] and len(lot) == 0 and not lot


async def test_a_lost_wake_up_is_passed_on_when_the_lot_asks_for_it() -> None:
    """A parker unparked and cancelled before it resumed passes its wake-up to the next
    parker in a pass_on_lost lot, and loses it in a plain one."""
    for pass_on, want in ((True, ["second"]), (False, [])):
        lot = ParkingLot(pass_on_lost=pass_on)
        order: list[str] = []
        first = asyncio.create_task(_parked(lot, order, "first"))
        second = asyncio.create_task(_parked(lot, order, "second"))
        await _settle()
        lot.unpark_one()
        first.cancel()  # woken, but cancelled before it ran
        await _settle()
        assert order == want
        lot.unpark_all()
        await asyncio.gather(first, second, return_exceptions=True)


async def test_unpark_all_wakes_everyone() -> None:
    """unpark_all() wakes every parker."""
    lot = ParkingLot()
    order: list[str] = []
    tasks = [asyncio.create_task(_parked(lot, order, str(i))) for i in range(4)]
    await _settle()
    lot.unpark_all()
    await asyncio.gather(*tasks)
    assert sorted(order) == ["0", "1", "2", "3"] and len(lot) == 0
