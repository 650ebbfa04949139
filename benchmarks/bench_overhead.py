"""Benchmark 1 — overhead: N concurrent callers, each ``await executor.execute(noop)``.

Per-task cost is the wall time from creating the first caller task to the last result,
divided by N; starting and stopping the executor or pool is not timed. Each job is built
inside the timed region (a ``Task`` for the library, a ``(priority, seq, fn, future)`` for
the pool), since every real caller pays for it.

Target (docs/design.md): library per-task cost <= 1.5x baseline (a) with one caller task per job,
same K. The aiojobs peer and bare ``create_task`` (c) are reported for context.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from . import _library as lib
from ._harness import Row, Variant, interleave, median, ratio, run
from ._settings import Settings
from .baselines import PriorityPool, aiojobs_execute, aiojobs_scheduler, bare_create_task

TARGET = 1.5


async def noop() -> None:
    """The baselines' no-op job."""
    return


async def _fan_out(n: int, call: Callable[[], Coroutine[Any, Any, Any]]) -> float:
    """Start ``n`` caller tasks running ``call()``, wait for all; seconds per task."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    callers = [loop.create_task(call()) for _ in range(n)]
    await asyncio.gather(*callers)
    return (time.perf_counter() - start) / n


def variants(n: int, workers: int, *, peers: bool = True) -> dict[str, Variant]:
    """The library, baseline (a), aiojobs and (c), each as one timed round."""

    async def library() -> float:
        async with lib.executor(workers) as executor:
            return await _fan_out(n, lambda: executor.execute(lib.noop_task()))

    async def pool() -> float:
        async with PriorityPool(workers) as p:
            return await _fan_out(n, lambda: p.execute(noop))

    async def aiojobs() -> float:
        async with aiojobs_scheduler(workers) as scheduler:
            return await _fan_out(n, lambda: aiojobs_execute(scheduler, noop))

    async def bare() -> float:
        return await _fan_out(n, lambda: bare_create_task(noop))

    found: dict[str, Callable[[], Awaitable[float]]] = {}
    if lib.unavailable_reason() is None:
        found["library"] = library
    found["pool (a)"] = pool
    if peers:
        found.update({"aiojobs": aiojobs, "create_task (c)": bare})
    return found


def measure(settings: Settings, loop: str) -> list[Row]:
    """Run the overhead benchmark for every (N, K) of ``settings`` on ``loop``."""
    return measure_sizes("overhead", variants, settings, loop, TARGET)


def measure_sizes(
    benchmark: str,
    make_variants: Callable[..., dict[str, Variant]],
    settings: Settings,
    loop: str,
    target: float,
) -> list[Row]:
    """One row per (N, K); for each K, every variant at every N runs in the same rounds.

    Interleaving the sizes as well as the variants keeps the scale benchmark's growth
    figures (largest N over smallest N) from comparing two different minutes of a noisy
    machine.
    """
    rows = []
    for workers in settings.workers:
        chosen: dict[str, Variant] = {}
        for n in settings.sizes:
            found = make_variants(n, workers, peers=n <= settings.peers_up_to)
            chosen.update({f"{name}|{n}": variant for name, variant in found.items()})
        samples = run(loop, partial(interleave, chosen, settings.rounds))
        for n in settings.sizes:
            mine = {
                key.rsplit("|", 1)[0]: values
                for key, values in samples.items()
                if key.endswith(f"|{n}")
            }
            rows.append(make_row(benchmark, n, workers, loop, mine, target))
    rows.sort(key=lambda row: (row.detail["n"], row.detail["workers"]))
    return rows


def make_row(
    benchmark: str,
    n: int,
    workers: int,
    loop: str,
    samples: dict[str, list[float]],
    target: float,
) -> Row:
    """Summarise interleaved per-task samples as one row (library vs pool (a))."""
    lib_median = median(samples["library"]) if "library" in samples else None
    base_median = median(samples["pool (a)"])
    lib_samples = samples.get("library", [])
    paired = [a / b for a, b in zip(lib_samples, samples["pool (a)"], strict=False)]
    return Row(
        benchmark=benchmark,
        size=f"N={n:,} K={workers}",
        loop=loop,
        unit="s/task",
        library=lib_median,
        baseline=base_median,
        baseline_name="pool (a)",
        # Rounds run their variants back to back, so a per-round ratio compares the same
        # minute of a noisy machine; its median is steadier than the ratio of medians.
        ratio=median(paired) if paired else None,
        target=target,
        peers={
            name: median(values)
            for name, values in samples.items()
            if name not in ("library", "pool (a)")
        },
        detail={
            "n": n,
            "workers": workers,
            "samples_s_per_task": samples,
            "paired_ratios": paired,
            "ratio_of_medians": ratio(lib_median, base_median),
            "library_unavailable": lib.unavailable_reason(),
        },
    )
