"""Soak run: a million mixed tasks through real executors, checking outcomes and memory.

Usage::

    python -m benchmarks.soak [--tasks N] [--seconds S] [--callers C] [--seed X]

(``python benchmarks/soak.py ...`` works too.) It pushes ``N`` tasks (1,000,000 by default)
through three executors in turn: single-processor mode (where urgent work arriving at random
preempts Background runs), multi-worker mode, and multi-worker mode with
``preempt_background``. The tasks are a mix of every lane and of computes that return at
once, step and checkpoint, fail, get cancelled by their caller or through their handle,
time out (``execute(timeout=)`` and ``Task.timeout``), call ``no_reschedule()``, run in a
worker thread, or have a state that cannot be restored (``_soak_workload.py``).

It reports throughput, the outcome of every call, whether the executors' statistics add up
and match those outcomes, and the process's resident memory (``VmRSS``) sampled over time
(``_soak_report.py``). It fails (exit status 1) if a call got an outcome its kind does not
allow, if the counts do not add up, or if memory is not flat after warm-up: the last sample
must stay within 10% + 8 MiB of the first sample taken after warm-up (``_soak_checks.py``).
``--seconds`` bounds the run: each phase stops admitting tasks when its share of that time
is up, and warm-up then ends after 10% of it.

This is a script, not a test: it takes minutes, and its figures are for people to read.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

if not __package__:
    # Run as a file (python benchmarks/soak.py): make the benchmarks package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._soak_checks import (
    PhaseReport,
    Sample,
    check_memory,
    check_phase,
    rss_kib,
)
from benchmarks._soak_report import RunSummary, print_report
from benchmarks._soak_workload import KIND_NAMES, KIND_WEIGHTS, KINDS, PHASES, Phase, one_call
from microscheduler import TaskExecutor


@dataclasses.dataclass
class Soak:
    """One soak run: its settings, its progress and its memory samples."""

    total: int
    seconds: float
    callers: int
    seed: int
    sample_interval: float
    started: float = 0.0
    done: int = 0
    samples: list[Sample] = dataclasses.field(default_factory=list)
    stopped_early: bool = False

    def sample(self) -> None:
        gc.collect()
        self.samples.append(Sample(time.monotonic() - self.started, self.done, rss_kib()))

    async def sampler(self) -> None:
        while True:
            await asyncio.sleep(self.sample_interval)
            self.sample()

    def out_of_time(self, deadline: float) -> bool:
        if time.monotonic() >= deadline:
            self.stopped_early = True
            return True
        return False

    async def run_phase(
        self, phase: Phase, count: int, deadline: float, logger: Any
    ) -> PhaseReport:
        """Make ``count`` calls from concurrent callers on a fresh executor, then check it."""
        report = PhaseReport(phase.name)
        rng = random.Random(f"{self.seed}-{phase.name}")
        executor = TaskExecutor.from_config(phase.config, logger=logger)
        issued = 0
        violations: Counter[str] = Counter()

        async def caller() -> None:
            nonlocal issued
            while issued < count and not self.out_of_time(deadline):
                issued += 1
                kind = rng.choices(KIND_NAMES, KIND_WEIGHTS)[0]
                outcome, right = await one_call(executor, rng, kind)
                report.outcomes[outcome] += 1
                if outcome not in KINDS[kind][1]:
                    violations[f"{kind} -> {outcome}"] += 1
                if not right:
                    violations[f"{kind}: wrong result"] += 1
                self.done += 1

        began = time.monotonic()
        async with executor:
            async with asyncio.timeout(max(60.0, self.seconds * 2)):
                await asyncio.gather(*(caller() for _ in range(self.callers)))
        report.seconds = time.monotonic() - began
        report.tasks = issued
        report.stats = executor.statistics()
        check_phase(report, report.stats, issued, violations)
        return report


def _expected_thrash_dropped(_logger: Any, _method: str, event_dict: Any) -> Any:
    """The soak preempts Background runs at random on purpose: that thrash is its workload,
    not news, so the executor's ``background_thrashing`` warning is dropped."""
    if event_dict.get("event") == "background_thrashing":
        raise structlog.DropEvent
    return event_dict


async def soak(args: argparse.Namespace) -> int:
    logger = structlog.wrap_logger(
        structlog.PrintLogger(),
        processors=[_expected_thrash_dropped, *structlog.get_config()["processors"]],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    run = Soak(args.tasks, args.seconds, args.callers, args.seed, args.sample_interval)
    run.started = time.monotonic()
    run.sample()
    sampler = asyncio.ensure_future(run.sampler())
    reports = []
    remaining = args.tasks
    try:
        for i, phase in enumerate(PHASES):
            last = i == len(PHASES) - 1
            count = remaining if last else round(args.tasks * phase.share)
            remaining -= count
            # Each phase gets its share of --seconds (the last one whatever is left).
            deadline = run.started + args.seconds
            if not last:
                deadline = min(deadline, time.monotonic() + args.seconds * phase.share)
            reports.append(await run.run_phase(phase, count, deadline, logger))
            run.sample()
    finally:
        sampler.cancel()
        try:
            await sampler
        except asyncio.CancelledError:
            pass
    summary = RunSummary(
        done=run.done,
        elapsed=time.monotonic() - run.started,
        callers=run.callers,
        seed=run.seed,
        seconds=run.seconds,
        stopped_early=run.stopped_early,
        samples=run.samples,
    )
    memory = check_memory(run.samples, total=run.total, seconds=run.seconds)
    return print_report(summary, reports, memory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks to run in all")
    parser.add_argument(
        "--seconds", type=float, default=1800.0, help="stop admitting tasks after this long"
    )
    parser.add_argument("--callers", type=int, default=256, help="concurrent callers")
    parser.add_argument("--seed", type=int, default=5, help="seed of the task mix")
    parser.add_argument(
        "--sample-interval", type=float, default=5.0, help="seconds between RSS samples"
    )
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.callers < 1 or args.seconds <= 0 or args.sample_interval <= 0:
        parser.error("--tasks, --callers, --seconds and --sample-interval must be positive")
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
