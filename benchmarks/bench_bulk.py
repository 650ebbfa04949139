"""Benchmark 2 — bulk: ``submit_nowait`` N tasks from one coroutine, then await every handle.

No caller task per job here: this is the batch path (an indexer queuing a directory).
Per-task cost is wall time from the first submit to the last result, divided by N.

Target (docs/design.md): library per-task cost <= 2x baseline (a) in bulk mode
(``pool.submit_nowait(fn)`` returning a future, then awaiting the futures in order).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from . import _library as lib
from ._harness import Row, Variant
from ._settings import Settings
from .baselines import PriorityPool, _call, aiojobs_scheduler
from .bench_overhead import measure_sizes, noop

TARGET = 2.0


def variants(n: int, workers: int, *, peers: bool = True) -> dict[str, Variant]:
    """The library, baseline (a), aiojobs and (c), each as one timed bulk round."""

    async def library() -> float:
        async with lib.executor(workers) as executor:
            start = time.perf_counter()
            handles = [executor.submit_nowait(lib.noop_task()) for _ in range(n)]
            for handle in handles:
                await handle
            return (time.perf_counter() - start) / n

    async def pool() -> float:
        async with PriorityPool(workers) as p:
            start = time.perf_counter()
            futures = [p.submit_nowait(noop) for _ in range(n)]
            for future in futures:
                await future
            return (time.perf_counter() - start) / n

    async def aiojobs() -> float:
        async with aiojobs_scheduler(workers) as scheduler:
            start = time.perf_counter()
            jobs = [await scheduler.spawn(_call(noop)) for _ in range(n)]
            for job in jobs:
                await job.wait()
            return (time.perf_counter() - start) / n

    async def bare() -> float:
        import asyncio

        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        tasks = [loop.create_task(_call(noop)) for _ in range(n)]
        for task in tasks:
            await task
        return (time.perf_counter() - start) / n

    found: dict[str, Callable[[], Awaitable[float]]] = {}
    if lib.unavailable_reason() is None:
        found["library"] = library
    found["pool (a)"] = pool
    if peers:
        found.update({"aiojobs": aiojobs, "create_task (c)": bare})
    return found


def measure(settings: Settings, loop: str) -> list[Row]:
    """Run the bulk benchmark for every (N, K) of ``settings`` on ``loop``."""
    return measure_sizes("bulk", variants, settings, loop, TARGET)
