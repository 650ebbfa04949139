"""The soak run's report: throughput, outcomes, statistics and memory, then the verdict."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter

from ._soak_checks import MemoryCheck, PhaseReport, Sample

__all__ = ("RunSummary", "print_report")


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What the whole run did, beside its phases' reports."""

    done: int
    elapsed: float
    callers: int
    seed: int
    seconds: float  # the --seconds bound
    stopped_early: bool  # --seconds ran out before --tasks
    samples: list[Sample]


def _fmt_kib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def print_report(run: RunSummary, reports: list[PhaseReport], memory: MemoryCheck) -> int:
    """Print the report; return the exit status (1 if any check failed)."""
    lines = [
        f"microscheduler soak: {run.done:,} tasks in {run.elapsed:.1f}s "
        f"({run.done / run.elapsed:,.0f} tasks/s), {run.callers} concurrent callers, "
        f"seed {run.seed}, Python {sys.version.split()[0]}",
    ]
    if run.stopped_early:
        lines.append(f"  stopped early: --seconds {run.seconds:g} reached before --tasks")
    problems: list[str] = []
    total: Counter[str] = Counter()
    for report in reports:
        s = report.stats
        assert s is not None, f"phase {report.name} has no statistics"
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
    if memory.warm is None:
        lines.append("  RSS flat after warm-up: not enough samples after warm-up to tell")
    else:
        warm, last = memory.warm, memory.last
        lines.append(
            f"  RSS flat after warm-up: {'yes' if memory.flat else 'NO'} (after warm-up "
            f"{_fmt_kib(warm.kib)} at {warm.done:,} tasks, last {_fmt_kib(last.kib)}, "
            f"limit {_fmt_kib(round(memory.limit))})"
        )
        if not memory.flat:
            problems.append("RSS grew after warm-up")
    if problems:
        lines.append("FAILED:")
        lines += [f"  {p}" for p in problems]
    else:
        lines.append("OK")
    print("\n".join(lines), flush=True)
    return 1 if problems else 0
