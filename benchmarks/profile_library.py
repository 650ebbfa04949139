"""Where the library's per-task time goes: cProfile over one overhead or bulk round.

Usage: ``python -m benchmarks.profile_library [--mode caller|bulk|preempt] [-n N]
[--workers K] [--top 25]``. Prints the Python function calls per job (everything the
round made, the benchmark's own task building and loop included, divided by N), the top
functions by own time (``tottime``) and the library's own functions by cumulative time.
cProfile slows everything down several times and unevenly, so read the shares and the
call counts, not the absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time
from functools import partial
from typing import Any

from . import _library as lib
from ._harness import quiet_logging, run


async def _caller_mode(n: int, workers: int) -> None:
    loop = asyncio.get_running_loop()
    async with lib.executor(workers) as executor:
        callers = [loop.create_task(executor.execute(lib.noop_task())) for _ in range(n)]
        await asyncio.gather(*callers)


async def _bulk_mode(n: int, workers: int) -> None:
    async with lib.executor(workers) as executor:
        handles = [executor.submit_nowait(lib.noop_task()) for _ in range(n)]
        for handle in handles:
            await handle


async def _preempt_mode(n: int, workers: int) -> None:
    m = lib.ms()
    running = asyncio.Event()

    async def background(resource: object, state: object, interrupt: object) -> None:
        running.set()
        while True:
            await asyncio.sleep(0)

    async def ui(resource: object, state: object, interrupt: object) -> None:
        running.clear()

    async with lib.executor(1) as executor:
        bg = executor.submit_nowait(m.Task(name="bg", compute=background))
        for _ in range(n):
            await running.wait()
            await executor.execute(m.Task(name="ui", compute=ui, priority=m.Priority.UI))
        bg.cancel()


MODES = {"caller": _caller_mode, "bulk": _bulk_mode, "preempt": _preempt_mode}


def main() -> None:
    """Profile one round and print the summary."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_library")
    parser.add_argument("--mode", choices=sorted(MODES), default="caller")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    quiet_logging()
    body = partial(MODES[args.mode], args.n, args.workers)
    lib.ms()  # imported before profiling: its import is not per-job work
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    run(args.loop, body)
    profiler.disable()
    elapsed = time.perf_counter() - start
    print(f"{args.mode} mode, N={args.n:,}, K={args.workers}, {args.loop}: {elapsed:.2f}s profiled")
    stats: Any = pstats.Stats(profiler)  # its .stats and .total_calls are untyped
    library_calls = sum(
        calls
        for (path, _, _), (_, calls, *_rest) in stats.stats.items()
        if "microscheduler" in path
    )
    print(
        f"calls per job: {stats.total_calls / args.n:.1f} in all, "
        f"{library_calls / args.n:.1f} of them in microscheduler's own functions"
    )
    sections = [
        ("by own time (tottime), everything", "tottime", [args.top]),
        ("by cumulative time, microscheduler only", "cumulative", ["microscheduler/", args.top]),
    ]
    for title, sort, restrictions in sections:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(*restrictions)
        table = out.getvalue()
        print(f"\n== {title}\n   ncalls{table.split('ncalls', 1)[-1]}")


if __name__ == "__main__":
    main()
