"""Benchmark 4 — memory: resident bytes per queued task.

Each measurement is a fresh interpreter (``python -m benchmarks.bench_memory --child ...``),
so one variant's freed-but-kept arenas never flatter or penalise another. The child starts
a one-worker executor (or pool), occupies its worker with a job that waits on a gate, reads
its resident set size, then starts N caller tasks that each ``await execute(noop)``, lets
them all reach the queue, and reads the peak resident set size (``VmHWM``). Bytes per
queued task = (peak - before) / N: the job tuple or Task, the handle or future, the queue
entry and the caller task, which is what the memory target counts.

Target (docs/design.md): library <= 1.5x baseline (a). aiojobs (``limit=1``, pending jobs)
is a peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

from . import _library as lib
from ._harness import Row, median, quiet_logging, ratio, run
from ._settings import Settings
from .baselines import PriorityPool, _call, aiojobs_scheduler
from .bench_overhead import noop

TARGET = 1.5
_ROOT = Path(__file__).resolve().parent.parent


def _status_kib() -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` in KiB, from /proc, or ru_maxrss for both elsewhere."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"VmRSS": peak, "VmHWM": peak}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


async def _settle() -> None:
    # Every caller queues its job in its first step; a few loop turns let them all run it.
    for _ in range(3):
        await asyncio.sleep(0)


async def _child(variant: str, n: int) -> dict[str, Any]:
    gate = asyncio.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def blocker() -> None:
        started.set()
        await gate.wait()

    async def lib_blocker(resource: object, state: object, interrupt: object) -> None:
        await blocker()

    if variant == "library":
        m = lib.ms()
        context: Any = lib.executor(1)
        async with context as executor:
            handle = executor.submit_nowait(m.Task(name="gate", compute=lib_blocker))
            await started.wait()
            before = _status_kib()
            callers = [loop.create_task(executor.execute(lib.noop_task())) for _ in range(n)]
            await _settle()
            after = _status_kib()
            gate.set()
            await handle
            await asyncio.gather(*callers)
    elif variant == "pool (a)":
        async with PriorityPool(1) as pool:
            first = pool.submit_nowait(blocker)
            await started.wait()
            before = _status_kib()
            callers = [loop.create_task(pool.execute(noop)) for _ in range(n)]
            await _settle()
            after = _status_kib()
            gate.set()
            await first
            await asyncio.gather(*callers)
    elif variant == "aiojobs":
        async with aiojobs_scheduler(1) as scheduler:
            job = await scheduler.spawn(blocker())
            await started.wait()
            before = _status_kib()

            async def spawn_and_wait() -> None:
                await (await scheduler.spawn(_call(noop))).wait()

            callers = [loop.create_task(spawn_and_wait()) for _ in range(n)]
            await _settle()
            after = _status_kib()
            gate.set()
            await job.wait()
            await asyncio.gather(*callers)
    else:
        raise ValueError(f"unknown variant {variant!r}")
    return {
        "variant": variant,
        "n": n,
        "rss_before_kib": before["VmRSS"],
        "rss_after_kib": after["VmRSS"],
        "peak_kib": after["VmHWM"],
        "bytes_per_task": (after["VmHWM"] - before["VmRSS"]) * 1024 / n,
    }


def _spawn(variant: str, n: int, loop: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_memory", variant, str(n), loop]
    done = subprocess.run(command, cwd=_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    # The figures are the last line; anything before it is the child's own chatter.
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(settings: Settings, loop: str) -> list[Row]:
    """Measure bytes per queued task for each variant, one fresh subprocess per figure."""
    n = settings.memory_tasks
    names = ["pool (a)", "aiojobs"]
    if lib.unavailable_reason() is None:
        names.insert(0, "library")
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(settings.memory_repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            found[name].append(_spawn(name, n, loop))
    per_task = {name: median([f["bytes_per_task"] for f in runs]) for name, runs in found.items()}
    library = per_task.get("library")
    return [
        Row(
            benchmark="memory",
            size=f"N={n:,} queued",
            loop=loop,
            unit="B/task",
            library=library,
            baseline=per_task["pool (a)"],
            baseline_name="pool (a)",
            ratio=ratio(library, per_task["pool (a)"]),
            target=TARGET,
            peers={"aiojobs": per_task["aiojobs"]},
            detail={"measurements": found, "repeats": settings.memory_repeats},
        )
    ]


def main() -> None:
    """Child entry point: measure one variant and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=["library", "pool (a)", "aiojobs"])
    parser.add_argument("n", type=int)
    parser.add_argument("loop", choices=["asyncio", "uvloop"])
    args = parser.parse_args()
    quiet_logging()
    print(json.dumps(run(args.loop, partial(_child, args.variant, args.n))))


if __name__ == "__main__":
    main()
