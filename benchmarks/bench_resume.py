"""Benchmark 6 — resume value: what ``save_state`` checkpoints save a preempted job.

A single-processor executor runs one resumable Background job of S steps (each step
awaits once). UI jobs preempt it P times, at moments fixed in advance as "after the k-th
step executed in total" (P distinct k drawn from 1..S-1 with a fixed seed), so both modes
are interrupted at the same points of work done, as UI requests arriving at fixed times
would. A step counts as executed when it starts, so a step cut short by a preemption and
redone counts twice.

- with checkpoints: after each step the job records its progress in its state and
  ``await interrupt.save_state(state)``; a rerun restores the snapshot and goes on.
- without: the job keeps its progress in a local variable; a rerun starts over.

Reported: total steps executed in each mode (ratio with/without; S is the floor), and the
wall time of a run without preemption in each mode (what the checkpoints cost). The steps
do no work besides their await, so that cost ratio is an upper bound; the JSON also has
the cost per ``save_state`` call.
There is no target for this one: it shows the feature's value, not its overhead.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from . import _library as lib
from ._harness import Row, median, run
from ._settings import Settings

CLEAN_RUNS = 7


class Progress:
    """The job's state: how many steps are done. Satisfies ``microscheduler.TaskState``."""

    def __init__(self) -> None:
        self.done = 0

    def save(self) -> bytes:
        """Encode the progress."""
        return self.done.to_bytes(8, "little")

    def restore(self, data: bytes) -> None:
        """Decode the progress saved by :meth:`save`."""
        self.done = int.from_bytes(data, "little")


@dataclass(slots=True)
class Counter:
    """Steps executed so far, and the step counts at which the driver preempts."""

    triggers: set[int]
    executed: int = 0
    fired: asyncio.Event = field(default_factory=asyncio.Event)


async def _job(
    steps: int, checkpoint: bool, counter: Counter, state: Progress, interrupt: Any
) -> int:
    step = state.done if checkpoint else 0
    while step < steps:
        counter.executed += 1
        if counter.executed in counter.triggers:
            counter.fired.set()
        await asyncio.sleep(0)  # the step's work; a preemption lands here
        step += 1
        if checkpoint:
            state.done = step
            await interrupt.save_state(state)
    return step


async def _run_once(steps: int, checkpoint: bool, triggers: list[int]) -> dict[str, Any]:
    m = lib.ms()
    counter = Counter(set(triggers))

    async def compute(resource: object, state: Progress, interrupt: Any) -> int:
        return await _job(steps, checkpoint, counter, state, interrupt)

    async def ui(resource: object, state: object, interrupt: object) -> None:
        return None

    async with lib.executor(1) as executor:
        start = time.perf_counter()
        job = executor.submit_nowait(
            m.Task(
                name="resumable",
                compute=compute,
                priority=m.Priority.BACKGROUND,
                initial_state=Progress(),
            )
        )
        for _ in triggers:
            await counter.fired.wait()
            counter.fired.clear()
            await executor.execute(m.Task(name="ui", compute=ui, priority=m.Priority.UI))
        result = await job
        wall = time.perf_counter() - start
        stats = executor.statistics()
    return {
        "steps_executed": counter.executed,
        "result": result,
        "wall_s": wall,
        "preempted": stats.preempted,
        "rescheduled": stats.rescheduled,
    }


async def _measure(settings: Settings, preemptions: int) -> dict[str, Any]:
    steps = settings.resume_steps
    rng = random.Random(settings.seed + preemptions)
    triggers = sorted(rng.sample(range(1, steps), preemptions))
    modes = {"with save_state": True, "without": False}
    found: dict[str, Any] = {
        mode: await _run_once(steps, checkpoint, triggers) for mode, checkpoint in modes.items()
    }
    # The cost of the checkpoints: unpreempted runs, the two modes alternating.
    clean: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(CLEAN_RUNS):
        for mode, checkpoint in modes.items():
            clean[mode].append((await _run_once(steps, checkpoint, []))["wall_s"])
    for mode in modes:
        found[mode]["unpreempted_wall_s"] = median(clean[mode])
        found[mode]["unpreempted_wall_s_runs"] = clean[mode]
    found["triggers"] = triggers
    return found


def measure(settings: Settings, loop: str) -> list[Row]:
    """Run the resume benchmark for every P of ``settings`` on ``loop``."""
    if lib.unavailable_reason() is not None:
        return []
    rows = []
    for preemptions in settings.resume_preemptions:
        found = run(loop, partial(_measure, settings, preemptions))
        with_, without = found["with save_state"], found["without"]
        rows.append(
            Row(
                benchmark="resume",
                size=f"S={settings.resume_steps:,} P={preemptions}",
                loop=loop,
                unit="steps",
                library=with_["steps_executed"],
                baseline=without["steps_executed"],
                baseline_name="no checkpoints",
                ratio=with_["steps_executed"] / without["steps_executed"],
                target=None,
                peers={},
                detail=found,
            )
        )
    if rows:
        first = rows[0].detail
        with_s = first["with save_state"]["unpreempted_wall_s"]
        without_s = first["without"]["unpreempted_wall_s"]
        rows.append(
            Row(
                benchmark="checkpoint cost",
                size=f"S={settings.resume_steps:,} P=0",
                loop=loop,
                unit="s",
                library=with_s,
                baseline=without_s,
                baseline_name="no checkpoints",
                ratio=with_s / without_s,
                target=None,
                detail={
                    "note": f"wall time of one unpreempted run, median of {CLEAN_RUNS}",
                    "per_save_state_s": (with_s - without_s) / settings.resume_steps,
                },
            )
        )
    return rows
