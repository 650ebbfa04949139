"""``python -m microscheduler demo``: watch UI work preempt resumable background work.

A single-processor executor indexes documents in the Background lane, checkpointing after
each one, while UI requests arrive at random moments. Each UI request preempts the
indexing at once; the indexing then resumes from its last checkpoint instead of starting
over. The run ends with a summary of UI latency and of the work the checkpoints saved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import structlog

from ._config import WorkerConfig
from ._executor import TaskExecutor
from ._handle import TaskHandle
from ._interrupt import InterruptContext
from ._priority import Priority
from ._task import Task
from .timeline import Timeline

__all__ = ("main",)

STEPS_PER_DOCUMENT = 4
STEP_SECONDS = 0.025
UI_STEPS = 2
UI_STEP_SECONDS = 0.01


class IndexState:
    """Indexing progress: the number of documents fully indexed (saved as JSON)."""

    def __init__(self) -> None:
        self.documents_done = 0

    def save(self) -> bytes:
        return json.dumps({"documents_done": self.documents_done}).encode()

    def restore(self, data: bytes) -> None:
        self.documents_done = json.loads(data)["documents_done"]


@dataclass
class Report:
    """What the demo observed."""

    documents: int
    ui_waits_ms: list[float] = field(default_factory=list)
    ui_totals_ms: list[float] = field(default_factory=list)
    steps_executed: int = 0
    steps_redone: int = 0  # partial-document steps repeated after a preemption
    steps_kept: int = 0  # steps a rerun did not repeat thanks to a checkpoint
    resumes: int = 0


class Demo:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.rng = random.Random(args.seed)
        self.start = time.perf_counter()
        documents = max(4, int(args.duration * 0.6 / (STEPS_PER_DOCUMENT * STEP_SECONDS)))
        self.report = Report(documents=documents)

    def say(self, lane: str, message: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:6.2f}s] {lane:<10} {message}", file=self.out, flush=True)

    async def index(self, resource: object, state: IndexState, ctx: InterruptContext) -> int:
        report = self.report
        if ctx.attempt > 1:
            report.resumes += 1
            report.steps_kept += state.documents_done * STEPS_PER_DOCUMENT
            self.say(
                "Background",
                f"indexing resumes from its checkpoint at document "
                f"{state.documents_done + 1}/{report.documents} (run {ctx.attempt})",
            )
        partial = 0  # steps done in the current, not yet checkpointed document
        try:
            while state.documents_done < report.documents:
                while partial < STEPS_PER_DOCUMENT:
                    await asyncio.sleep(STEP_SECONDS)  # parse, embed, store ...
                    report.steps_executed += 1
                    partial += 1
                state.documents_done += 1
                partial = 0
                await ctx.save_state(state)
            return state.documents_done
        except asyncio.CancelledError:
            report.steps_redone += partial
            if ctx.reason == "preempted":
                self.say(
                    "Background",
                    f"indexing preempted in document {state.documents_done + 1} "
                    f"(step {partial + 1}/{STEPS_PER_DOCUMENT}); checkpoint: "
                    f"{_documents(state.documents_done)} done",
                )
            raise

    async def answer(self, resource: object, state: object, ctx: InterruptContext) -> str:
        for _ in range(UI_STEPS):
            await asyncio.sleep(UI_STEP_SECONDS)  # "think"
        return "ok"

    async def ui_request(self, executor: TaskExecutor, number: int) -> None:
        submitted = time.perf_counter()

        async def compute(resource: object, state: object, ctx: InterruptContext) -> str:
            began = time.perf_counter()
            reply = await self.answer(resource, state, ctx)
            # Said here, not after execute() returns: the worker goes straight on to the
            # preempted indexing, whose resume would otherwise be printed first.
            done = time.perf_counter()
            wait_ms = (began - submitted) * 1000
            self.report.ui_waits_ms.append(wait_ms)
            self.report.ui_totals_ms.append((done - submitted) * 1000)
            self.say(
                "UI",
                f"request #{number} answered: started after {wait_ms:.2f} ms, "
                f"done in {(done - submitted) * 1000:.0f} ms",
            )
            return reply

        running = executor.statistics().running
        preempts = self.args.workers == 1 or self.args.preempt_background
        note = " -> preempts indexing" if running and preempts else ""
        self.say("UI", f"request #{number} arrives{note}")
        await executor.execute(Task(name=f"ui-{number}", compute=compute, priority=Priority.UI))

    async def run(self) -> Report:
        args = self.args
        timeline = Timeline(title="microscheduler demo") if args.timeline else None
        config = WorkerConfig(
            ui_workers=1,
            background_workers=args.workers - 1,
            preempt_background=args.preempt_background,
            on_event=timeline,
        )
        async with TaskExecutor.from_config(config, logger=_logger(args.verbose)) as executor:
            mode = "single-processor" if config.single_processor else f"{args.workers} workers"
            self.say(
                "executor",
                f"started ({mode}); indexing {_documents(self.report.documents)} "
                f"in the Background lane",
            )
            indexing = await executor.submit(
                Task(name="index", compute=self.index, initial_state=IndexState)
            )
            indexing.add_done_callback(self.announce_indexed)
            requests: list[asyncio.Task[None]] = []
            deadline = self.start + args.duration
            number = 0
            # UI requests go on arriving until --duration is up, also once the indexing
            # has finished (they are then answered by an idle worker).
            while True:
                delay = self.rng.uniform(0.1, 0.5)
                if time.perf_counter() + delay >= deadline:
                    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
                    break
                await asyncio.sleep(delay)
                number += 1
                requests.append(asyncio.create_task(self.ui_request(executor, number)))
            await asyncio.gather(*requests)
            try:
                async with asyncio.timeout(0.5):  # a little grace for the last document
                    await indexing
            except TimeoutError:
                self.say("Background", "indexing did not finish within --duration; stopping")
            stats = executor.statistics()
        self.print_summary(stats.preempted, stats.rescheduled)
        if timeline is not None:
            timeline.write(args.timeline)
            print(f"  timeline           written to {args.timeline}", file=self.out)
        return self.report

    def announce_indexed(self, indexing: TaskHandle[int]) -> None:
        """Say that the indexing is complete, when it is (a done callback)."""
        if not indexing.cancelled() and indexing.exception() is None:
            self.say("Background", f"indexing complete: {_documents(indexing.result())}")

    def print_summary(self, preempted: int, rescheduled: int) -> None:
        report = self.report
        print(file=self.out)
        print("Summary", file=self.out)
        waits = report.ui_waits_ms
        if waits:
            print(
                f"  UI requests        {len(waits)}; start latency p50 {_pct(waits, 50):.2f} ms, "
                f"p99 {_pct(waits, 99):.2f} ms; answered p50 "
                f"{_pct(report.ui_totals_ms, 50):.0f} ms",
                file=self.out,
            )
        print(f"  preemptions        {preempted} (reruns scheduled: {rescheduled})", file=self.out)
        minimum = report.documents * STEPS_PER_DOCUMENT
        print(
            f"  indexing steps     {report.steps_executed} executed for {minimum} needed "
            f"({report.steps_redone} redone: only partial documents)",
            file=self.out,
        )
        print(
            f"  checkpoints saved  {report.steps_kept} steps that restarting from scratch "
            f"would have redone",
            file=self.out,
        )


def _documents(count: int) -> str:
    return f"{count} document" if count == 1 else f"{count} documents"


def _pct(values: list[float], percentile: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percentile - 1]


def _logger(verbose: bool) -> object:
    level = logging.DEBUG if verbose else logging.WARNING
    return structlog.wrap_logger(
        structlog.PrintLogger(sys.stderr),
        processors=[structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and the ``demo`` subcommand's (whose usage its errors show)."""
    parser = argparse.ArgumentParser(
        prog="python -m microscheduler",
        description="microscheduler: an asyncio-native priority task scheduler.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="watch UI requests preempt resumable background indexing",
        description=(
            "Run a single-processor executor that indexes documents in the Background lane, "
            "saving a checkpoint after each document, while UI requests arrive at random "
            "moments. Every UI request preempts the indexing at once; the indexing then "
            "resumes from its last checkpoint. Ends with UI latency and how much work the "
            "checkpoints saved."
        ),
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=5.0,
        help="roughly how long the demo runs, in seconds (default: 5)",
    )
    demo.add_argument(
        "--workers",
        type=int,
        default=1,
        help="1 = single-processor mode with preemption (default); n > 1 = one "
        "UI worker and n-1 background workers",
    )
    demo.add_argument(
        "--preempt-background",
        action="store_true",
        help="with --workers 2 or more: preempt background work while UI work runs (one "
        "worker always preempts)",
    )
    demo.add_argument(
        "--seed", type=int, default=7, help="random seed for the UI request arrivals (default: 7)"
    )
    demo.add_argument(
        "--timeline",
        metavar="PATH",
        help="also write the run as a timeline picture: one HTML file that opens from disk",
    )
    demo.add_argument(
        "--model",
        metavar="PATH.gguf",
        help="generate summaries and chat replies with this llama.cpp model (needs the llm "
        "extra) instead of the simulated indexing",
    )
    demo.add_argument(
        "--verbose",
        action="store_true",
        help="also print the library's debug log events (to stderr)",
    )
    return parser, demo


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of ``python -m microscheduler``."""
    parser, demo = _parser()
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 600:
        demo.error("--duration must be between 0 and 600 seconds")
    if args.workers < 1:
        demo.error("--workers must be at least 1")
    if args.preempt_background and args.workers == 1:
        # Silently ignoring it would let the user believe it changed something.
        demo.error(
            "--preempt-background needs --workers 2 or more: with one worker, UI work "
            "always preempts background work"
        )
    if args.model is not None:
        if args.workers != 1 or args.timeline:
            demo.error("--model runs one worker and draws no timeline: drop --workers/--timeline")
        if not Path(args.model).is_file():
            # (by keyword: a message, not a log event, for the event-name scan)
            demo.error(message=f"--model: no such file: {args.model}")
        from .llm._demo import run_model_demo

        run_model_demo(args, out or sys.stdout)
        return 0
    if args.timeline is not None:
        problem = _unwritable(args.timeline)
        if problem is not None:
            # Checked before the run: finding out after it would lose the whole run.
            demo.exit(2, f"{demo.prog}: error: --timeline {args.timeline!r}: {problem}\n")
    asyncio.run(Demo(args, out or sys.stdout).run())
    return 0


def _unwritable(path: str) -> str | None:
    """Why the timeline page cannot be written at ``path``, or None if it can (a real
    file is made and removed beside it, as the page's own atomic write will)."""
    if os.path.isdir(path):
        return "is a directory"
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, probe = tempfile.mkstemp(prefix=".timeline-", suffix=".tmp", dir=directory)
    except OSError as exc:
        return f"cannot write in {directory!r} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None
