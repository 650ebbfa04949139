"""Soak run: a million mixed tasks through real executors, checking outcomes and memory.

Usage::

    python benchmarks/soak.py [--tasks N] [--seconds S] [--callers C] [--seed X]

It pushes ``N`` tasks (1,000,000 by default) through three executors in turn: single-processor
mode (where urgent work arriving at random preempts Background runs), multi-worker mode, and
multi-worker mode with ``preempt_background``. The tasks are a mix of every lane and of
computes that return at once, step and checkpoint, fail, get cancelled by their caller or
through their handle, time out (``execute(timeout=)`` and ``Task.timeout``), call
``no_reschedule()``, run in a worker thread, or have a state that cannot be restored.

It reports throughput, the outcome of every call, whether the executors' statistics add up
and match those outcomes, and the process's resident memory (``VmRSS``) sampled over time.
It fails (exit status 1) if a call got an outcome its kind does not allow, if the counts do
not add up, or if memory is not flat after warm-up: the last sample must stay within 10% +
8 MiB of the first sample taken after warm-up. ``--seconds`` bounds the run: each phase
stops admitting tasks when its share of that time is up, and warm-up then ends after 10% of
it.

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
from collections.abc import Callable
from typing import Any

import structlog

from microscheduler import (
    ExecutorShutdownError,
    InterruptContext,
    Priority,
    StateRestoreError,
    Task,
    TaskExecutor,
    TaskHandle,
    TaskInterruptedError,
    WorkerConfig,
)

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND

WARMUP_SHARE = 0.10  # memory should be flat once this share of tasks (or of --seconds) is done
RSS_SLACK_RATIO = 0.10
RSS_SLACK_KIB = 8 * 1024


class Boom(Exception):
    """The failure a failing compute raises."""


class Progress:
    """A resumable state: a step counter."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def save(self) -> bytes:
        return str(self.value).encode()

    def restore(self, data: bytes) -> None:
        self.value = int(data)


class Unrestorable:
    """A state whose snapshot cannot be restored."""

    def save(self) -> bytes:
        return b"?"

    def restore(self, data: bytes) -> None:
        raise ValueError(f"cannot restore {data!r}")


def rss_kib() -> int:
    """The resident set size of this process, in KiB (``VmRSS`` in /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


# -- computes -----------------------------------------------------------------------------


async def quick(resource: object, state: object, ctx: InterruptContext) -> int:
    return 0


def stepper(steps: int, *, fail: bool = False, no_reschedule: bool = False) -> Any:
    """An async compute counting to ``steps``, checkpointing after every step."""

    async def compute(resource: object, state: Progress, ctx: InterruptContext) -> int:
        if no_reschedule:
            ctx.no_reschedule()
        while state.value < steps:
            await asyncio.sleep(0)
            state.value += 1
            await ctx.save_state(state)
        if fail:
            raise Boom(steps)
        return state.value

    return compute


def sync_stepper(steps: int) -> Any:
    """A sync compute (run in a thread) that polls for interruption between steps."""

    def compute(resource: object, state: Progress, ctx: InterruptContext) -> int:
        while state.value < steps:
            if ctx.is_interrupted():
                return -1  # discarded: an interrupted run is rerun or already answered
            state.value += 1
            ctx.save_state_nowait(state)
        return state.value

    return compute


# -- one call -----------------------------------------------------------------------------

# kind: (weight, outcomes it may end with)
KINDS: dict[str, tuple[int, frozenset[str]]] = {
    "quick": (28, frozenset({"result"})),
    "steps": (28, frozenset({"result"})),
    "fail": (8, frozenset({"failed"})),
    "cancel": (
        6,
        frozenset({"cancelled", "cancelled late/result", "cancelled/run had returned", "result"}),
    ),
    "handle_cancel": (6, frozenset({"cancelled", "result"})),
    "call_timeout": (6, frozenset({"timeout", "result"})),
    "task_timeout": (6, frozenset({"timeout", "result"})),
    "no_reschedule": (6, frozenset({"result", "interrupted"})),
    "sync": (4, frozenset({"result"})),
    "restore_error": (2, frozenset({"restore"})),
}
_KIND_NAMES = tuple(KINDS)
_KIND_WEIGHTS = tuple(weight for weight, _ in KINDS.values())
_PRIORITIES = (UI, LE, BG)
_PRIORITY_WEIGHTS = (10, 10, 80)


async def _steps(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _execute_keeping_handle(
    executor: TaskExecutor, task: Task[Any], handles: list[TaskHandle[Any]]
) -> Any:
    handle = await executor.submit(task)
    handles.append(handle)
    return await handle


def _watched(compute: Callable[..., Any], returned: list[bool]) -> Any:
    """Wrap an async compute to note whether a run returned without being interrupted."""

    async def watched(resource: object, state: Any, ctx: InterruptContext) -> Any:
        value = await compute(resource, state, ctx)
        if ctx.reason is None:
            returned.append(True)
        return value

    return watched


def _outcome_of(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, Boom):
        return "failed"
    if isinstance(exc, TaskInterruptedError):
        return "interrupted"
    if isinstance(exc, StateRestoreError):
        return "restore"
    if isinstance(exc, ExecutorShutdownError):
        return "shutdown"
    raise exc


def _ended_as(handle: TaskHandle[Any]) -> str:
    """The outcome an execution ended with, for a caller that was cancelled too late."""
    try:
        handle.result()
    except BaseException as exc:
        return _outcome_of(exc)
    return "result"


async def one_call(executor: TaskExecutor, rng: random.Random, kind: str) -> tuple[str, bool]:
    """Make one call of ``kind``; return its outcome and whether its result was right."""
    priority = rng.choices(_PRIORITIES, _PRIORITY_WEIGHTS)[0]
    steps = rng.randint(1, 8)
    expected: int | None = steps
    task_timeout: float | None = None
    state: Any = Progress()
    saved: bytes | None = None
    compute: Callable[..., Any]
    if kind == "quick":
        compute, expected = quick, 0
    elif kind == "fail":
        compute = stepper(rng.randint(0, 2), fail=True)
    elif kind == "task_timeout":
        compute, task_timeout = stepper(rng.randint(1, 400)), rng.choice((0.0, 0.0002, 0.001))
        expected = None
    elif kind == "no_reschedule":
        compute = stepper(steps, no_reschedule=True)
    elif kind == "sync":
        compute = sync_stepper(steps)
    elif kind == "restore_error":
        compute, state, saved = stepper(steps), Unrestorable(), b"?"
    else:
        compute = stepper(steps)
    returned: list[bool] = []
    if kind == "cancel":
        compute = _watched(compute, returned)
    task = Task(
        name=kind,
        compute=compute,
        priority=priority,
        initial_state=state,
        saved_state=saved,
        timeout=task_timeout,
    )
    handles: list[TaskHandle[Any]] = []
    try:
        if kind == "cancel":
            # execute() spelled out (submit, then await the handle) to keep the handle: a
            # cancel that lands after the execution ended still cancels the caller.
            inner = asyncio.ensure_future(_execute_keeping_handle(executor, task, handles))
            await _steps(rng.randint(1, 6))
            inner.cancel()
            value = await inner
        elif kind == "handle_cancel":
            handle = executor.submit_nowait(task)
            await _steps(rng.randint(0, 6))
            handle.cancel()
            value = await handle
        elif kind == "call_timeout":
            value = await executor.execute(task, timeout=rng.choice((0.0, 0.0002, 0.001)))
        else:
            value = await executor.execute(task)
    except asyncio.CancelledError:
        if handles and handles[0].done() and not handles[0]._future.cancelled():
            return f"cancelled late/{_ended_as(handles[0])}", True
        if returned:
            # The caller's cancel landed while its run was returning a result nobody got.
            return "cancelled/run had returned", True
        return "cancelled", True
    except BaseException as exc:
        return _outcome_of(exc), True
    return "result", expected is None or value == expected


# -- phases -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str
    config: WorkerConfig
    share: float


PHASES = (
    Phase("single-processor", WorkerConfig(ui_queue_buffer_size=0, background_buffer_size=0), 0.6),
    Phase(
        "multi-worker",
        WorkerConfig(ui_workers=2, background_workers=3, background_buffer_size=0),
        0.2,
    ),
    Phase(
        "multi-worker preempt_background",
        WorkerConfig(
            ui_workers=1, background_workers=3, preempt_background=True, background_buffer_size=0
        ),
        0.2,
    ),
)


@dataclasses.dataclass
class PhaseReport:
    name: str
    tasks: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    problems: list[str] = dataclasses.field(default_factory=list)
    stats: Any = None


@dataclasses.dataclass
class Soak:
    total: int
    seconds: float
    callers: int
    seed: int
    sample_interval: float
    started: float = 0.0
    done: int = 0
    samples: list[tuple[float, int, int]] = dataclasses.field(default_factory=list)
    stopped_early: bool = False

    def sample(self) -> None:
        gc.collect()
        self.samples.append((time.monotonic() - self.started, self.done, rss_kib()))

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
        report = PhaseReport(phase.name)
        rng = random.Random(f"{self.seed}-{phase.name}")
        executor = TaskExecutor.from_config(phase.config, logger=logger)
        issued = 0
        violations: Counter[str] = Counter()

        async def caller() -> None:
            nonlocal issued
            while issued < count and not self.out_of_time(deadline):
                issued += 1
                kind = rng.choices(_KIND_NAMES, _KIND_WEIGHTS)[0]
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
        stats = report.stats = executor.statistics()
        o = report.outcomes
        problems = report.problems
        problems += [f"{n} x {what}" for what, n in sorted(violations.items())]
        ended = stats.completed + stats.failed + stats.cancelled + stats.timed_out
        if stats.running or any(stats.queued.values()):
            problems.append(f"work left after shutdown: {stats}")
        if stats.submitted != ended + stats.running + sum(stats.queued.values()):
            problems.append(f"statistics do not add up: {stats}")
        if stats.submitted != issued or sum(o.values()) != issued:
            problems.append(
                f"{issued} calls, {sum(o.values())} outcomes, {stats.submitted} submitted"
            )
        # A caller cancelled after its execution ended gets CancelledError (as with any
        # awaited future); the statistics count how the execution itself ended.
        ended_as = Counter({k: v for k, v in o.items() if not k.startswith("cancelled late/")})
        ended_as.update({k[15:]: v for k, v in o.items() if k.startswith("cancelled late/")})
        expected = {
            "completed": ended_as["result"],
            "failed": ended_as["failed"] + ended_as["interrupted"] + ended_as["restore"],
            "timed_out": ended_as["timeout"],
            "cancelled": ended_as["cancelled"]
            + ended_as["cancelled/run had returned"]
            + ended_as["shutdown"],
        }
        for field, value in expected.items():
            if getattr(stats, field) != value:
                problems.append(
                    f"statistics().{field} == {getattr(stats, field)}, calls say {value}"
                )
        return report


def _fmt_kib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


async def soak(args: argparse.Namespace) -> int:
    logger = structlog.wrap_logger(
        structlog.PrintLogger(),
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
    elapsed = time.monotonic() - run.started
    return print_report(run, reports, elapsed)


def print_report(run: Soak, reports: list[PhaseReport], elapsed: float) -> int:
    lines = [
        f"microscheduler soak: {run.done:,} tasks in {elapsed:.1f}s "
        f"({run.done / elapsed:,.0f} tasks/s), {run.callers} concurrent callers, "
        f"seed {run.seed}, Python {sys.version.split()[0]}",
    ]
    if run.stopped_early:
        lines.append(f"  stopped early: --seconds {run.seconds:g} reached before --tasks")
    problems: list[str] = []
    total: Counter[str] = Counter()
    for report in reports:
        s = report.stats
        total.update(report.outcomes)
        rate = report.tasks / report.seconds if report.seconds else 0.0
        lines.append(
            f"- {report.name}: {report.tasks:,} tasks in {report.seconds:.1f}s ({rate:,.0f}/s)"
        )
        lines.append(
            "    outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(report.outcomes.items()))
        )
        lines.append(
            f"    statistics: submitted {s.submitted:,} = completed {s.completed:,} + failed "
            f"{s.failed:,} + cancelled {s.cancelled:,} + timed_out {s.timed_out:,} + running "
            f"{s.running} + queued {sum(s.queued.values())}; preempted {s.preempted:,}, "
            f"rescheduled {s.rescheduled:,}"
        )
        verdict = "yes" if not report.problems else "NO"
        lines.append(f"    counts add up and match the calls' outcomes: {verdict}")
        problems += [f"{report.name}: {p}" for p in report.problems]
    lines.append("  all outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(total.items())))
    lines.append(
        "  (cancelled late/X: the caller was cancelled after its execution ended with X, which"
        " the statistics count; cancelled/run had returned: cancelled in the loop step its"
        " run returned, counted as cancelled)"
    )
    lines.append("  RSS over time (elapsed s, tasks done, VmRSS):")
    for at, done, kib in run.samples:
        lines.append(f"    {at:7.1f}s {done:>10,} {_fmt_kib(kib):>11}")
    warm = next(
        (
            s
            for s in run.samples
            if s[1] > 0 and (s[1] >= run.total * WARMUP_SHARE or s[0] >= run.seconds * WARMUP_SHARE)
        ),
        None,
    )
    last = run.samples[-1]
    if warm is None or warm is last:
        lines.append("  RSS flat after warm-up: not enough samples after warm-up to tell")
    else:
        limit = warm[2] * (1 + RSS_SLACK_RATIO) + RSS_SLACK_KIB
        flat = last[2] <= limit
        lines.append(
            f"  RSS flat after warm-up: {'yes' if flat else 'NO'} (after warm-up "
            f"{_fmt_kib(warm[2])} at {warm[1]:,} tasks, last {_fmt_kib(last[2])}, "
            f"limit {_fmt_kib(round(limit))})"
        )
        if not flat:
            problems.append("RSS grew after warm-up")
    if problems:
        lines.append("FAILED:")
        lines += [f"  {p}" for p in problems]
    else:
        lines.append("OK")
    print("\n".join(lines), flush=True)
    return 1 if problems else 0


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
