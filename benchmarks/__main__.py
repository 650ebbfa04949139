"""Command line: run the suite, print the table, write every figure as JSON.

Usage: ``python -m benchmarks [--quick] [--json PATH] [--loop asyncio|uvloop|both]
[--only overhead,bulk,...]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from . import _library as lib
from . import (
    bench_bulk,
    bench_checkpoint,
    bench_memory,
    bench_overhead,
    bench_preemption,
    bench_process,
    bench_ray,
    bench_resume,
    bench_scale,
    bench_service,
)
from ._harness import Row, available_loops, format_table, quiet_logging
from ._settings import FULL, QUICK, Settings

BENCHMARKS: dict[str, Callable[[Settings, str], list[Row]]] = {
    "overhead": bench_overhead.measure,
    "bulk": bench_bulk.measure,
    "preemption": bench_preemption.measure,
    "memory": bench_memory.measure,
    "resume": bench_resume.measure,
    "checkpoint": bench_checkpoint.measure,
    # Real HTTP load on uvicorn processes: minutes, so full mode only (it returns no rows
    # in --quick).
    "service": bench_service.measure,
    "ray": bench_ray.measure,
    # Child processes and a client process; in --quick, a few seconds on asyncio only.
    "process": bench_process.measure,
}
ORDER = [
    "overhead", "scale", "bulk", "preemption", "process", "memory", "resume", "checkpoint",
    "service", "ray",
]  # fmt: skip


def machine() -> dict[str, Any]:
    """What the figures were measured on."""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    def git(*command: str) -> str:
        try:
            return subprocess.run(
                ["git", *command],
                cwd=Path(__file__).resolve().parent,
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
        except OSError:
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    # The library's working tree may differ from the commit (a benchmark of work in progress).
    dirty = bool(git("status", "--porcelain", "--", "../microscheduler"))
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "microscheduler": version("microscheduler"),
        "uvloop": version("uvloop"),
        "aiojobs": version("aiojobs"),
        "git_commit": commit or None,
        "library_tree_dirty": dirty,
        "library_unavailable": lib.unavailable_reason(),
    }


def _clean(value: Any) -> Any:
    """Make figures JSON-safe: NaN and infinity become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of ``python -m benchmarks``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="microscheduler benchmarks: ratios against in-process baselines.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, about 2 minutes (CI)")
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("bench-results.json"),
        help="where to write every figure (default: bench-results.json)",
    )
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "both"], default="both")
    parser.add_argument(
        "--only",
        default=",".join(ORDER),
        help=f"comma-separated subset of: {', '.join(ORDER)}",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ORDER))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    args.only = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks on the chosen loops; print the table and write the JSON."""
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    loops = available_loops() if args.loop == "both" else [args.loop]
    if args.loop == "uvloop" and "uvloop" not in available_loops():
        print("uvloop is not installed", file=sys.stderr)
        return 2
    quiet_logging()
    reason = lib.unavailable_reason()
    if reason is not None:
        print(f"note: {reason}; library columns will read n/a", file=sys.stderr)

    started = time.perf_counter()
    by_benchmark: dict[str, list[Row]] = {name: [] for name in ORDER}
    wanted = set(args.only)
    if "scale" in wanted:
        wanted.add("overhead")
    for loop in loops:
        for name in ORDER:
            if name not in wanted or name == "scale":
                continue
            t0 = time.perf_counter()
            by_benchmark[name] += BENCHMARKS[name](settings, loop)
            print(f"{name:>10} on {loop}: {time.perf_counter() - t0:5.1f}s", file=sys.stderr)
    if "scale" in wanted:
        by_benchmark["scale"] = bench_scale.derive(by_benchmark["overhead"])

    rows = [row for name in ORDER if name in args.only for row in by_benchmark[name]]
    duration = time.perf_counter() - started
    mode = "quick" if settings.quick else "full"
    info = machine()
    print()
    print(
        f"microscheduler benchmarks ({mode} mode, {duration:.0f}s) - Python {info['python']}, "
        f"{info['cpus']} CPUs, loops: {', '.join(loops)}"
    )
    print("ratio = library / baseline (lower is better); targets: docs/design.md.")
    print(format_table(rows))
    missed = [row for row in rows if row.met is False]
    print(f"\n{len(missed)} of {sum(row.met is not None for row in rows)} targets missed.")

    report = {
        "mode": mode,
        "loops": loops,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": duration,
        "machine": info,
        "settings": dataclasses.asdict(settings),
        "rows": [row.to_json() for row in rows],
    }
    args.json.write_text(json.dumps(_clean(report), indent=1) + "\n")
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
