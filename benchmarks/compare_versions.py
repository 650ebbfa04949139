"""Versions of the library side by side: the same rows, in one process, interleaved.

Usage: ``python -m benchmarks.compare_versions v1=9263e5e start=2f45750 now=HEAD
[--rounds 15] [-n 10000] [--loop asyncio|uvloop]``. Each ``label=revision`` is taken from
git (``git archive``) into a temporary directory and imported under a package name of its
own, so every version runs in this one process, one after the other within each round,
in alternating order (A B C, C B A, ...). On a shared, noisy machine a slow minute then
slows every version alike, and the medians compare the same minutes, which separate runs
of ``python -m benchmarks`` cannot promise.

Rows (medians over the rounds, then each version as a ratio to the first):

- ``bulk``: building ``n`` tasks, ``submit_nowait`` for each, awaiting each handle, per job;
- ``overhead``: one caller task per job awaiting ``execute()``, ``n`` jobs, per job;
- ``preempt``: single-processor mode, a Background job stepping with ``sleep(0)``; the
  time from an ``execute()`` of UI work to the UI compute's first line (200 per round).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from ._harness import loop_factory, quiet_logging

PREEMPT_SAMPLES = 200


def _extract(revision: str, package: str, into: Path) -> None:
    """Write the ``microscheduler`` package of ``revision`` to ``into/package``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "microscheduler"],
        check=True,
        capture_output=True,
    ).stdout
    tar_path = into / f"{package}.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into / "_tmp", filter="data")
    (into / "_tmp" / "microscheduler").rename(into / package)


def _config(m: Any) -> Any:
    return m.WorkerConfig(
        ui_workers=1,
        background_workers=0,
        ui_queue_buffer_size=0,
        last_effort_buffer_size=0,
        background_buffer_size=0,
    )


async def _noop(resource: object, state: object, interrupt: object) -> None:
    return None


async def _bulk(m: Any, n: int) -> float:
    async with m.TaskExecutor.from_config(_config(m)) as executor:
        start = time.perf_counter()
        handles = [executor.submit_nowait(m.Task(name="noop", compute=_noop)) for _ in range(n)]
        for handle in handles:
            await handle
        return (time.perf_counter() - start) / n


async def _overhead(m: Any, n: int) -> float:
    loop = asyncio.get_running_loop()
    async with m.TaskExecutor.from_config(_config(m)) as executor:
        start = time.perf_counter()
        callers = [
            loop.create_task(executor.execute(m.Task(name="noop", compute=_noop))) for _ in range(n)
        ]
        await asyncio.gather(*callers)
        return (time.perf_counter() - start) / n


async def _preempt(m: Any, n: int) -> float:
    running = asyncio.Event()
    started_at = [0.0]

    async def background(resource: object, state: object, interrupt: object) -> None:
        running.set()
        while True:
            await asyncio.sleep(0)

    async def ui(resource: object, state: object, interrupt: object) -> None:
        started_at[0] = time.perf_counter()
        running.clear()

    latencies = []
    async with m.TaskExecutor.from_config(_config(m)) as executor:
        feeder = executor.submit_nowait(m.Task(name="bg", compute=background))
        for _ in range(PREEMPT_SAMPLES):
            await running.wait()
            await asyncio.sleep(0)  # the Background job is between two steps
            start = time.perf_counter()
            await executor.execute(m.Task(name="ui", compute=ui, priority=m.Priority.UI))
            latencies.append(started_at[0] - start)
        feeder.cancel()
    return statistics.median(latencies)


ROWS: dict[str, Callable[[Any, int], Coroutine[Any, Any, float]]] = {
    "bulk": _bulk,
    "overhead": _overhead,
    "preempt p50": _preempt,
}


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_versions")
    parser.add_argument("versions", nargs="+", help="label=git-revision, the first is the base")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    quiet_logging()
    import microscheduler  # noqa: F401 - the versions' classes say __module__ = "microscheduler"

    labels = [spec.split("=", 1)[0] for spec in args.versions]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for spec in args.versions:
            label, revision = spec.split("=", 1)
            _extract(revision, f"ms_{label}", root)
        sys.path.insert(0, str(root))
        modules = {label: importlib.import_module(f"ms_{label}") for label in labels}
        samples: dict[tuple[str, str], list[float]] = {}
        for round_ in range(-1, args.rounds):  # round -1 warms up, and is not kept
            order = labels if round_ % 2 == 0 else labels[::-1]
            for row, measure in ROWS.items():
                for label in order:
                    gc.collect()
                    runner = asyncio.Runner(loop_factory=loop_factory(args.loop))
                    with runner:
                        value = runner.run(measure(modules[label], args.n))
                    if round_ >= 0:
                        samples.setdefault((row, label), []).append(value)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    print(f"n={args.n:,} rounds={args.rounds} loop={args.loop}: medians, us per job (ratio)")
    print("| row | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for row in ROWS:
        base = statistics.median(samples[(row, labels[0])])
        cells = []
        for label in labels:
            value = statistics.median(samples[(row, label)])
            cells.append(f"{value * 1e6:.2f} ({value / base:.2f})")
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
