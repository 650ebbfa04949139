"""How long a browser takes to draw a large timeline picture.

``python -m benchmarks.timeline_render [--runs 10000] [--rounds 5]`` writes the
:class:`microscheduler.timeline.Timeline` page of ``--runs`` synthetic runs (four
workers, all three lanes, some runs preempted and resumed) and a *naive* page of the same
runs (one SVG ``<rect>`` with a ``<title>`` per run, nothing merged), then loads each in
headless Chromium ``--rounds`` times, interleaved, and reports the median time from the
start of navigation to the second animation frame after the load event (parsing, layout
and first paint), the page's element count, and the ratio timeline / naive.

It needs Debian's ``chromium`` (``/usr/bin/chromium``). Not part of ``python -m
benchmarks``: a browser is a heavier dependency than the suite's, and the figure answers
a different question (is the picture usable), so it runs on its own.
"""

from __future__ import annotations

import argparse
import html
import random
import statistics
import sys
import tempfile
from pathlib import Path

from microscheduler import Priority, SchedulerEvent
from microscheduler._events import EventKind
from microscheduler.timeline import Run, Timeline

from ._chromium import Chromium

__all__ = ("main", "naive_page", "synthetic_events")


def synthetic_events(runs: int, workers: int = 4, seed: int = 1) -> list[SchedulerEvent]:
    """The events of exactly ``runs`` short runs on ``workers`` workers.

    Executions alternate over the workers; about 30 % of Background ones are preempted
    once and resumed. Runs take 1 ms plus an exponential 3 ms on average, so most are far
    narrower than a pixel at the picture's scale, as in a busy real executor.
    """
    rng = random.Random(seed)
    events: list[SchedulerEvent] = []
    free_at = [0.0] * workers
    made = execution = 0
    while made < runs:
        execution += 1
        worker = execution % workers
        priority = rng.choice(list(Priority))
        preempted = priority is Priority.BACKGROUND and made + 2 <= runs and rng.random() < 0.3
        steps: list[tuple[EventKind, int, int | None]] = [("submitted", 0, None)]
        steps.append(("started", 1, worker))
        if preempted:
            steps += [("preempted", 1, worker), ("resumed", 2, worker)]
        steps.append(("completed", 2 if preempted else 1, worker))
        now = free_at[worker]
        for kind, attempt, on in steps:
            if kind == "started":
                now += rng.uniform(0, 0.002)
            elif kind == "resumed":
                now += 0.001
            elif kind != "submitted":
                now += 0.001 + rng.expovariate(1 / 0.003)
            events.append(
                SchedulerEvent(
                    kind=kind,
                    task=f"t{execution}",
                    key=None,
                    priority=priority,
                    worker_id=on,
                    attempt=attempt,
                    time=now,
                    execution=execution,
                )
            )
        made += 2 if preempted else 1
        free_at[worker] = now
    return events


def naive_page(runs: list[Run], width: int = 1100) -> str:
    """The baseline: every run its own bar with its own hover title, nothing merged."""
    start = min(run.queued for run in runs)
    scale = width / (max(run.end for run in runs) - start)
    workers = sorted({run.worker_id for run in runs})
    colours = {Priority.UI: "#d1495b", Priority.LAST_EFFORT: "#edae49"}
    bars = [
        f'<rect x="{(run.start - start) * scale:.2f}" y="{workers.index(run.worker_id) * 34}" '
        f'width="{(run.end - run.start) * scale:.2f}" height="22" '
        f'fill="{colours.get(run.priority, "#00798c")}"><title>'
        f"{html.escape(run.task)} attempt {run.attempt}</title></rect>"
        for run in runs
    ]
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{34 * len(workers)}">'
        + "".join(bars)
        + "</svg></body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.timeline_render``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timeline_render")
    parser.add_argument("--runs", type=int, default=10_000, help="runs to draw (10000)")
    parser.add_argument("--rounds", type=int, default=5, help="loads of each page (5)")
    args = parser.parse_args(argv)
    timeline = Timeline()
    for event in synthetic_events(args.runs):
        timeline(event)
    with tempfile.TemporaryDirectory(prefix="microscheduler-render-") as folder:
        pages = {"timeline": Path(folder, "timeline.html"), "naive": Path(folder, "naive.html")}
        timeline.write(pages["timeline"])
        pages["naive"].write_text(naive_page(timeline.runs), encoding="utf-8")
        times: dict[str, list[float]] = {name: [] for name in pages}
        elements: dict[str, int] = {}
        with Chromium(width=1300, height=400) as browser:
            for page in pages.values():
                browser.open(page)  # a first load warms the browser's caches
            for _ in range(args.rounds):
                for name, page in pages.items():
                    times[name].append(browser.open(page))
                    elements[name] = browser.evaluate("document.getElementsByTagName('*').length")
            errors = browser.console_errors
        sizes = {name: page.stat().st_size for name, page in pages.items()}
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.runs:,} runs, {args.rounds} loads each (median, navigation start to 2nd frame)")
    for name in pages:
        spread = ", ".join(f"{value:.0f}" for value in times[name])
        print(
            f"  {name:<9} {medians[name]:7.1f} ms  ({spread})  {elements[name]:,} elements, "
            f"{sizes[name] / 1e6:.2f} MB"
        )
    print(f"  ratio timeline / naive: {medians['timeline'] / medians['naive']:.2f}")
    if errors:
        print(f"  console errors: {errors}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
