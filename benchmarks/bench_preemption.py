"""Benchmark 3 — preemption latency in single-processor mode.

One worker runs a stream of Background jobs (a feeder coroutine executes them back to
back). Each job runs a few steps and awaits between them; a step is either nothing
(``await asyncio.sleep(0)``, 20 steps a job) or about 1 ms of CPU work followed by that
await (5 steps a job). A driver sleeps a random 0.2 ms to max(2 ms, one job's CPU time), and
if a Background job is running at that moment it
submits a UI job and records the time from just before the submit call to the first line
of the UI job. Moments when no Background job happens to run are skipped (and counted),
so every sample measures a real preemption (or, for the plain pool, a real wait).

Variants, interleaved in blocks of ``BLOCK`` samples:

- library: ``TaskExecutor(1)``, ``executor.submit_nowait(task, Priority.UI)``;
- preempting pool (b) with one worker — the baseline of the target: p50 and p99 <= 2x;
- plain pool (a) with one worker and no preemption — what preemption buys: the UI job
  waits for the Background job to finish.

The submit itself happens when the driver coroutine gets the loop, that is between two
steps of the Background job, so the 1 ms of a CPU step is not in the figure for any
variant; what the figure shows is the cost of interrupting the job and starting the UI
work.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from . import _library as lib
from ._harness import Row, median, percentile, ratio, run
from ._settings import Settings
from .baselines import BACKGROUND, UI, PreemptingPool, PriorityPool

TARGET = 2.0
BLOCK = 100
#: step kind -> (CPU seconds per step, steps per Background job)
STEP_KINDS = {"sleep(0) steps": (0.0, 20), "1ms CPU steps": (0.001, 5)}


@dataclass(slots=True)
class Probe:
    """What the Background job, the UI job and the driver share."""

    cpu_seconds: float
    steps: int
    bg_running: bool = False
    ui_started_ns: int = 0
    stop: bool = False
    skipped: int = 0
    latencies: list[float] = field(default_factory=list)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def background_job(probe: Probe) -> None:
    """``probe.steps`` steps, each optional CPU work then ``await asyncio.sleep(0)``."""
    probe.bg_running = True
    try:
        for _ in range(probe.steps):
            if probe.cpu_seconds:
                _spin(probe.cpu_seconds)
            await asyncio.sleep(0)
    finally:
        probe.bg_running = False


@dataclass(slots=True)
class Driver:
    """How one variant runs Background work and submits a UI job."""

    open: Callable[[], AbstractAsyncContextManager[Any]]
    run_background: Callable[[Any, Probe], Awaitable[object]]
    submit_ui: Callable[[Any, Probe], Awaitable[object]]
    preemptions: Callable[[Any], int]


def _pool_driver(kind: type[PriorityPool]) -> Driver:
    async def ui(probe: Probe) -> None:
        probe.ui_started_ns = time.perf_counter_ns()

    def run_background(pool: PriorityPool, probe: Probe) -> Awaitable[object]:
        return pool.execute(partial(background_job, probe), BACKGROUND)

    def submit_ui(pool: PriorityPool, probe: Probe) -> Awaitable[object]:
        job = partial(ui, probe)  # built before the clock starts, as the library's Task is
        start = time.perf_counter_ns()
        future = pool.submit_nowait(job, UI)
        return _timed(future, start, probe)

    return Driver(
        open=lambda: kind(1),
        run_background=run_background,
        submit_ui=submit_ui,
        preemptions=lambda pool: getattr(pool, "preemptions", 0),
    )


def _library_driver() -> Driver:
    m = lib.ms()

    def run_background(executor: Any, probe: Probe) -> Awaitable[object]:
        async def compute(resource: object, state: object, interrupt: object) -> None:
            await background_job(probe)

        task = m.Task(name="background", compute=compute, priority=m.Priority.BACKGROUND)
        return executor.execute(task)  # type: ignore[no-any-return]

    def submit_ui(executor: Any, probe: Probe) -> Awaitable[object]:
        async def compute(resource: object, state: object, interrupt: object) -> None:
            probe.ui_started_ns = time.perf_counter_ns()

        task = m.Task(name="ui", compute=compute, priority=m.Priority.UI)
        start = time.perf_counter_ns()
        handle = executor.submit_nowait(task, m.Priority.UI)
        return _timed(handle, start, probe)

    return Driver(
        open=lambda: lib.executor(1),
        run_background=run_background,
        submit_ui=submit_ui,
        preemptions=lambda executor: executor.statistics().preempted,
    )


async def _timed(awaitable: Awaitable[object], start_ns: int, probe: Probe) -> None:
    await awaitable
    probe.latencies.append((probe.ui_started_ns - start_ns) / 1e9)


async def _block(driver: Driver, probe: Probe, samples: int, rng: random.Random) -> int:
    """Take ``samples`` latencies on a fresh executor/pool; return its preemption count."""
    probe.stop = False
    async with driver.open() as target:

        async def feed() -> None:
            while not probe.stop:
                await driver.run_background(target, probe)

        feeder = asyncio.get_running_loop().create_task(feed())
        taken = 0
        # Spread the submits over a whole Background job, so that they do not all land
        # just after the job boundary that the previous UI job left behind.
        longest = max(0.002, probe.cpu_seconds * probe.steps)
        while taken < samples:
            await asyncio.sleep(rng.uniform(0.0002, longest))
            if not probe.bg_running:
                probe.skipped += 1
                continue
            await driver.submit_ui(target, probe)
            taken += 1
        probe.stop = True
        await feeder
        return driver.preemptions(target)


async def _measure(settings: Settings, cpu_seconds: float, steps: int) -> dict[str, dict[str, Any]]:
    drivers = {"preempting pool (b)": _pool_driver(PreemptingPool)}
    if lib.unavailable_reason() is None:
        drivers = {"library": _library_driver(), **drivers}
    drivers["plain pool (a)"] = _pool_driver(PriorityPool)
    probes = {name: Probe(cpu_seconds, steps) for name in drivers}
    preemptions = dict.fromkeys(drivers, 0)
    rng = random.Random(settings.seed)
    names = list(drivers)
    blocks = max(1, settings.latency_samples // BLOCK)
    for b in range(blocks):
        shift = b % len(names)
        for name in names[shift:] + names[:shift]:
            size = min(BLOCK, settings.latency_samples)
            preemptions[name] += await _block(drivers[name], probes[name], size, rng)
    return {
        name: {
            "latencies_s": probe.latencies,
            "skipped_moments": probe.skipped,
            "preemptions": preemptions[name],
        }
        for name, probe in probes.items()
    }


def measure(settings: Settings, loop: str) -> list[Row]:
    """Run the preemption-latency benchmark for both step kinds on ``loop``."""
    rows = []
    for kind, (cpu_seconds, steps) in STEP_KINDS.items():
        found = run(loop, partial(_measure, settings, cpu_seconds, steps))
        for q in (50, 99):
            figures = {name: percentile(data["latencies_s"], q) for name, data in found.items()}
            library = figures.get("library")
            baseline = figures["preempting pool (b)"]
            rows.append(
                Row(
                    benchmark=f"preempt p{q}",
                    size=f"{kind}, {len(found['preempting pool (b)']['latencies_s'])} UI",
                    loop=loop,
                    unit="s latency",
                    library=library,
                    baseline=baseline,
                    baseline_name="preempting pool (b)",
                    ratio=ratio(library, baseline),
                    target=TARGET,
                    peers={"plain pool (a)": figures["plain pool (a)"]},
                    detail={
                        "step_kind": kind,
                        "cpu_seconds_per_step": cpu_seconds,
                        "steps_per_background_job": steps,
                        "medians_s": {
                            name: median(data["latencies_s"]) for name, data in found.items()
                        },
                        "variants": found if q == 99 else "see the p99 row",
                    },
                )
            )
    return rows
