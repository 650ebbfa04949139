"""Ray actors and computes shared by the cluster tests (pickled by value into Ray)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import ray

from microscheduler import InterruptContext
from microscheduler.ray import Checkpoint, run_remote


@ray.remote
class Stepper:
    """An async actor whose ``count`` is a resumable remote job that logs what it does.

    ``count(total, hold_at=n)`` adds 0..total-1, yielding a checkpoint ``"i,acc"`` after
    each step; the first time any run reaches step ``hold_at`` it stops there until it is
    cancelled (only a preemption, a cancel or a kill moves it on).
    """

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.steps: list[int] = []
        self.held = False

    async def count(
        self, total: int, *, hold_at: int | None = None, snapshot: bytes | None = None
    ) -> AsyncIterator[object]:
        step, acc = map(int, snapshot.split(b",")) if snapshot else (0, 0)
        self.log.append(("start", step))
        try:
            while step < total:
                if step == hold_at and not self.held:
                    self.held = True
                    self.log.append(("hold", step))
                    await asyncio.Event().wait()
                self.steps.append(step)
                acc += step
                step += 1
                yield Checkpoint(f"{step},{acc}".encode())
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.log.append(("cancelled", step))
            raise
        self.log.append(("done", step))
        yield acc

    async def fail(self, message: str, *, snapshot: bytes | None = None) -> AsyncIterator[int]:
        yield 1
        raise ValueError(message)

    async def record(self, what: str) -> str:
        self.log.append((what,))
        return what

    async def holding(self) -> bool:
        return bool(self.log) and self.log[-1][0] == "hold"

    async def get_log(self) -> list[tuple[Any, ...]]:
        return self.log

    async def get_steps(self) -> list[int]:
        return self.steps

    async def pid(self) -> int:
        return os.getpid()


def no_gpu(worker_id: int, worker_type: object) -> object:
    """A resource factory that fails, as on a node without the hardware."""
    raise RuntimeError("no GPU on this node")


async def count(resource: Any, state: object, interrupt: InterruptContext) -> int:
    """Background compute: the remote count to 10, held at step 5 the first time."""
    result: int = await run_remote(interrupt, resource.count, 10, hold_at=5)
    return result


async def count_to_3(resource: Any, state: object, interrupt: InterruptContext) -> int:
    """A short remote count that never holds."""
    result: int = await run_remote(interrupt, resource.count, 3)
    return result


async def ui_record(resource: Any, state: object, interrupt: InterruptContext) -> str:
    """UI compute: log "ui" on the actor."""
    result: str = await resource.record.remote("ui")
    return result
