"""The soak run's checks: each phase's outcomes against its statistics, and flat memory.

A phase fails if a call got an outcome its kind does not allow or a wrong result, if the
executor's statistics do not add up or do not match the calls' outcomes, or if work is
left after its shutdown. The whole run fails if the process's resident memory is not flat
after warm-up: the last sample must stay within 10% + 8 MiB of the first sample taken
after warm-up (once 10% of the tasks, or of ``--seconds``, is done).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import NamedTuple

from microscheduler import ExecutorStatistics

from ._outcomes import BUCKET

__all__ = ("MemoryCheck", "PhaseReport", "Sample", "check_memory", "check_phase", "rss_kib")

WARMUP_SHARE = 0.10  # memory should be flat once this share of tasks (or of --seconds) is done
RSS_SLACK_RATIO = 0.10
RSS_SLACK_KIB = 8 * 1024

# Where statistics() counts the execution of a call with each outcome. A caller cancelled in
# the loop step its run returned in is counted as cancelled.
_COUNTED_IN = {**BUCKET, "cancelled/run had returned": "cancelled"}
_LATE = "cancelled late/"


@dataclasses.dataclass
class PhaseReport:
    """What one phase did: its calls' outcomes, its final statistics and its problems."""

    name: str
    tasks: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    problems: list[str] = dataclasses.field(default_factory=list)
    stats: ExecutorStatistics | None = None


def check_phase(
    report: PhaseReport, stats: ExecutorStatistics, issued: int, violations: Counter[str]
) -> None:
    """Add to ``report.problems`` every way the phase's counts are wrong."""
    o = report.outcomes
    problems = report.problems
    problems += [f"{n} x {what}" for what, n in sorted(violations.items())]
    ended = stats.completed + stats.failed + stats.cancelled + stats.timed_out
    if stats.running or any(stats.queued.values()):
        problems.append(f"work left after shutdown: {stats}")
    if stats.submitted != ended + stats.running + sum(stats.queued.values()):
        problems.append(f"statistics do not add up: {stats}")
    if stats.submitted != issued or sum(o.values()) != issued:
        problems.append(f"{issued} calls, {sum(o.values())} outcomes, {stats.submitted} submitted")
    # A caller cancelled after its execution ended gets CancelledError (as with any
    # awaited future); the statistics count how the execution itself ended.
    ended_as = Counter({k: v for k, v in o.items() if not k.startswith(_LATE)})
    ended_as.update({k[len(_LATE) :]: v for k, v in o.items() if k.startswith(_LATE)})
    expected = dict.fromkeys(("completed", "failed", "timed_out", "cancelled"), 0)
    for outcome, count in ended_as.items():
        if outcome in _COUNTED_IN:  # anything else is already a violation
            expected[_COUNTED_IN[outcome]] += count
    for field, value in expected.items():
        if getattr(stats, field) != value:
            problems.append(f"statistics().{field} == {getattr(stats, field)}, calls say {value}")


def rss_kib() -> int:
    """The resident set size of this process, in KiB (``VmRSS`` in /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class Sample(NamedTuple):
    """One memory sample."""

    at: float  # seconds since the run started
    done: int  # tasks done by then
    kib: int  # VmRSS


@dataclasses.dataclass(frozen=True)
class MemoryCheck:
    """The first sample after warm-up, the last sample, and the limit the last must keep.

    ``warm`` is None (and nothing is judged) when no sample was taken after warm-up
    before the last one.
    """

    warm: Sample | None
    last: Sample
    limit: float

    @property
    def flat(self) -> bool | None:
        """Whether memory stayed flat after warm-up; None when there is too little to tell."""
        return None if self.warm is None else self.last.kib <= self.limit


def check_memory(samples: list[Sample], *, total: int, seconds: float) -> MemoryCheck:
    """Judge memory growth from the samples of a run of ``total`` tasks or ``seconds``."""
    warm = next(
        (
            s
            for s in samples
            if s.done > 0 and (s.done >= total * WARMUP_SHARE or s.at >= seconds * WARMUP_SHARE)
        ),
        None,
    )
    last = samples[-1]
    if warm is None or warm is last:
        return MemoryCheck(None, last, 0.0)
    return MemoryCheck(warm, last, warm.kib * (1 + RSS_SLACK_RATIO) + RSS_SLACK_KIB)
