"""Benchmark 7 — UI latency on a Ray actor pool under Background load (``--only ray``).

K = 2 Ray actors stand for two GPU workers; each runs one call at a time
(``max_concurrency=1``). A round submits 20 Background jobs of 50 steps of ~5 ms (a
blocking ``time.sleep``, as a GPU kernel holds its worker) and, at moments drawn at random
over the first 80% of the round's expected length, UI requests of one such step. The
figure is each UI request's latency, submit to result.

Variants, alternating round by round on the same actors:

- **plain Ray** — the baseline: jobs and UI requests are plain actor calls, spread round
  robin over the two actors, which run them in Ray's own FIFO order; a UI request waits
  for the Background jobs queued before it.
- **microscheduler.ray** — a ``TaskExecutor`` with one UI worker and two Background
  workers (``preempt_background=True``); the UI worker shares actor 0 with a Background
  worker. Jobs run through ``run_remote`` (a checkpoint after every step); a UI request
  preempts the Background runs, whose remote calls are cancelled, and they resume from
  their checkpoints afterwards.

Also reported: the Background makespan (first submit to last result) of both variants, and
the steps the actors executed beyond the 1,000 a round needs (a preempted step is redone).
Ray runs only on the asyncio loop here; Ray must be installed (the ``ray`` extra).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from . import _library as lib
from ._harness import Row, median, percentile, ratio, run
from ._settings import Settings

K = 2
JOBS = 20
STEPS = 50
STEP_S = 0.005
UI_PER_ROUND = 10
NO_UI = "microscheduler.ray, no UI"


def _actor_class() -> Any:
    import ray

    from microscheduler.ray import Checkpoint

    class GpuWorker:
        """Stands for one GPU worker: each step holds it ~5 ms."""

        def __init__(self) -> None:
            self.executed = 0

        async def job(self, steps: int, *, snapshot: bytes | None = None) -> AsyncIterator[Any]:
            for step in range(int(snapshot) if snapshot else 0, steps):
                time.sleep(STEP_S)
                self.executed += 1
                yield Checkpoint(str(step + 1).encode())
                await asyncio.sleep(0)  # where a cancellation can land
            yield steps

        async def ui(self, *, snapshot: bytes | None = None) -> AsyncIterator[str]:
            time.sleep(STEP_S)
            yield "ui"

        async def plain_job(self, steps: int) -> int:
            for _ in range(steps):
                time.sleep(STEP_S)
                self.executed += 1
                await asyncio.sleep(0)
            return steps

        async def plain_ui(self) -> str:
            time.sleep(STEP_S)
            return "ui"

        async def take_executed(self) -> int:
            done, self.executed = self.executed, 0
            return done

    return ray.remote(GpuWorker).options(max_concurrency=1)


async def _plain_round(actors: list[Any], moments: list[float]) -> tuple[list[float], float]:
    t0 = time.perf_counter()
    jobs = [actors[i % K].plain_job.remote(STEPS) for i in range(JOBS)]

    async def ui(i: int, at: float) -> float:
        await asyncio.sleep(at)
        start = time.perf_counter()
        await actors[i % K].plain_ui.remote()
        return time.perf_counter() - start

    async def background() -> float:
        await asyncio.gather(*jobs)
        return time.perf_counter() - t0

    makespan, *latencies = await asyncio.gather(
        background(), *(ui(i, at) for i, at in enumerate(moments))
    )
    return latencies, makespan


async def _library_round(executor: Any, moments: list[float]) -> tuple[list[float], float]:
    m = lib.ms()
    from microscheduler.ray import run_remote

    async def job(resource: Any, state: object, interrupt: Any) -> int:
        return await run_remote(interrupt, resource.job, STEPS)  # type: ignore[no-any-return]

    async def ui_compute(resource: Any, state: object, interrupt: Any) -> str:
        return await run_remote(interrupt, resource.ui)  # type: ignore[no-any-return]

    t0 = time.perf_counter()
    handles = [await executor.submit(m.Task(name=f"job-{i}", compute=job)) for i in range(JOBS)]

    async def ui(at: float) -> float:
        await asyncio.sleep(at)
        start = time.perf_counter()
        await executor.execute(m.Task(name="ui", compute=ui_compute, priority=m.Priority.UI))
        return time.perf_counter() - start

    async def background() -> float:
        await asyncio.gather(*handles)
        return time.perf_counter() - t0

    makespan, *latencies = await asyncio.gather(background(), *(ui(at) for at in moments))
    return latencies, makespan


async def _measure(rounds: int, seed: int) -> dict[str, dict[str, Any]]:
    import ray

    m = lib.ms()
    actors = [_actor_class().remote() for _ in range(K)]
    await asyncio.gather(*(actor.__ray_ready__.remote() for actor in actors))
    config = m.WorkerConfig(
        ui_workers=1,
        background_workers=K,
        preempt_background=True,
        ui_queue_buffer_size=0,
        background_buffer_size=0,
        # UI worker 0 shares actor 0 with Background worker 1; worker 2 has actor 1.
        resource_factory=lambda worker_id, worker_type: actors[max(0, worker_id - 1)],
    )
    rng = random.Random(seed)
    expected = JOBS * STEPS * STEP_S / K
    order = ["plain Ray", "microscheduler.ray", NO_UI]
    found: dict[str, dict[str, Any]] = {
        name: {"latencies_s": [], "makespans_s": [], "extra_steps": []} for name in order
    }
    preemptions = 0
    try:
        for r in range(rounds):
            for name in order[r % 3 :] + order[: r % 3]:
                moments = sorted(rng.uniform(0, 0.8 * expected) for _ in range(UI_PER_ROUND))
                if name == NO_UI:
                    moments = []
                if name == "plain Ray":
                    latencies, makespan = await _plain_round(actors, moments)
                else:
                    async with m.TaskExecutor.from_config(config) as executor:
                        latencies, makespan = await _library_round(executor, moments)
                    preemptions += executor.statistics().preempted
                executed = sum(await asyncio.gather(*(a.take_executed.remote() for a in actors)))
                found[name]["latencies_s"] += latencies
                found[name]["makespans_s"].append(makespan)
                found[name]["extra_steps"].append(executed - JOBS * STEPS)
    finally:
        for actor in actors:
            ray.kill(actor)
    found["microscheduler.ray"]["preemptions"] = preemptions
    return found


def measure(settings: Settings, loop: str) -> list[Row]:
    """Run the Ray benchmark (asyncio loop only; needs Ray installed)."""
    if loop != "asyncio" or lib.unavailable_reason() is not None:
        return []
    try:
        import ray
    except ImportError:
        return []
    rounds = 3 if settings.quick else 6
    ray.init(num_cpus=K + 1, include_dashboard=False, log_to_driver=False)
    try:
        found = run(loop, partial(_measure, rounds, settings.seed))
    finally:
        ray.shutdown()
    plain, library = found["plain Ray"], found["microscheduler.ray"]
    size = f"K={K}, {JOBS}x{STEPS} steps, {len(plain['latencies_s'])} UI"
    rows = []
    for q in (50, 99):
        lib_q = percentile(library["latencies_s"], q)
        base_q = percentile(plain["latencies_s"], q)
        rows.append(
            Row(
                benchmark=f"ray UI p{q}",
                size=size,
                loop=loop,
                unit="s latency",
                library=lib_q,
                baseline=base_q,
                baseline_name="plain Ray (FIFO)",
                ratio=ratio(lib_q, base_q),
                target=None,
                detail={"variants": found if q == 99 else "see the p99 row"},
            )
        )
    lib_span, base_span = median(library["makespans_s"]), median(plain["makespans_s"])
    quiet_span = median(found[NO_UI]["makespans_s"])
    rows.append(
        Row(
            benchmark="ray bg makespan",
            size=size,
            loop=loop,
            unit="s",
            library=lib_span,
            baseline=base_span,
            baseline_name="plain Ray (FIFO)",
            ratio=ratio(lib_span, base_span),
            target=None,
            peers={NO_UI: quiet_span},
            detail={
                "extra_steps_per_round": {
                    name: data["extra_steps"] for name, data in found.items()
                },
                "preemptions": library["preemptions"],
                "makespans_s": {name: data["makespans_s"] for name, data in found.items()},
                # Background throughput lost to preemption: the same jobs with and without
                # the UI requests, both through microscheduler.ray.
                "throughput_lost_to_preemption": 1 - quiet_span / lib_span,
                "streaming_overhead_vs_plain": quiet_span / base_span,
            },
        )
    )
    return rows
