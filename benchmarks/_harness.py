"""Shared plumbing: event loops, interleaved rounds, statistics and result rows.

The machines this runs on are shared and noisy, so nothing here compares absolute times
between runs. Every benchmark runs the library and its baselines in the same process and
event loop, alternating (A B C, B C A, C A B, ...) so that a slow minute hurts all of them,
and reports medians and the ratio library/baseline.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import statistics
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

Variant = Callable[[], Awaitable[float]]


def available_loops() -> list[str]:
    """The event loops this machine can run: always ``asyncio``, plus ``uvloop`` if installed."""
    loops = ["asyncio"]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        pass
    else:
        loops.append("uvloop")
    return loops


def quiet_logging() -> None:
    """Filter structlog events below WARNING, as a production app that configured
    structlog would, and drop ``background_thrashing``.

    The library is silent by default anyway (its events go to the stdlib logger
    ``microscheduler``, which shows nothing below WARNING until configured); this also
    keeps any other structlog user in the process quiet. Either way the executor sees at
    start that debug is filtered and builds no per-task event at all. The preemption
    benchmarks preempt Background runs before any checkpoint on purpose: the executor's
    thrash warning would be written to stderr inside the measured latencies.
    """
    import structlog

    processors = list(structlog.get_config()["processors"])
    if _deliberate_thrash_dropped not in processors:
        processors.insert(0, _deliberate_thrash_dropped)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def _deliberate_thrash_dropped(_logger: Any, _method: str, event_dict: Any) -> Any:
    """Drop the ``background_thrashing`` warning: the benchmarks thrash on purpose."""
    import structlog

    if event_dict.get("event") == "background_thrashing":
        raise structlog.DropEvent
    return event_dict


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory for the named event loop (``asyncio`` or ``uvloop``)."""
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    raise ValueError(f"unknown event loop {name!r}; use 'asyncio' or 'uvloop'")


def run(loop: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion on a fresh event loop of the named kind."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main())


async def interleave(variants: Mapping[str, Variant], rounds: int) -> dict[str, list[float]]:
    """Run each variant ``rounds`` times, rotating their order every round.

    Each variant is an async callable returning one figure (seconds per task, say). A full
    garbage collection precedes every call, so one variant's garbage is not collected on
    another's clock.
    """
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            samples[name].append(await variants[name]())
    return samples


def median(values: list[float]) -> float:
    """The median of ``values`` (NaN for an empty list)."""
    return statistics.median(values) if values else math.nan


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest-rank method."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(library: float | None, baseline: float | None) -> float | None:
    """``library / baseline``, or None when either side is missing or the baseline is 0."""
    if library is None or baseline is None or baseline == 0 or math.isnan(library):
        return None
    return library / baseline


@dataclass(slots=True)
class Row:
    """One line of the results table, and one object of the JSON output.

    ``library`` and ``baseline`` are in ``unit`` (medians, or percentiles for latency);
    ``ratio`` is library/baseline — for timed rounds the median of the per-round ratios,
    which can differ a little from the ratio of the two medians shown;
    ``target`` is the bound on ``ratio`` from docs/design.md (None when the row is informational).
    """

    benchmark: str
    size: str
    loop: str
    unit: str
    library: float | None
    baseline: float | None
    baseline_name: str
    ratio: float | None
    target: float | None
    peers: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        """Whether the target holds; None when there is no target or no figure."""
        if self.target is None or self.ratio is None:
            return None
        return self.ratio <= self.target

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every figure in the row."""
        data = asdict(self)
        data["met"] = self.met
        return data


_UNIT_SCALE = {
    "s/task": (1e6, "us"),
    "s latency": (1e6, "us"),
    "s": (1e3, "ms"),
    "B/task": (1.0, "B"),
    "steps": (1.0, ""),
    "x": (1.0, "x"),
}


def _fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    scale, suffix = _UNIT_SCALE.get(unit, (1.0, ""))
    scaled = value * scale
    digits = 2 if abs(scaled) < 100 else 0
    return f"{scaled:,.{digits}f}{suffix}"


def format_table(rows: list[Row]) -> str:
    """Render ``rows`` as a fixed-width text (and Markdown-compatible) table."""
    header = [
        "benchmark",
        "N/K",
        "loop",
        "library",
        "baseline",
        "vs",
        "ratio",
        "target",
        "met?",
        "peers",
    ]
    lines = [header]
    for row in rows:
        peers = ", ".join(f"{k} {_fmt(v, row.unit)}" for k, v in row.peers.items())
        met = {True: "yes", False: "NO", None: "-"}[row.met]
        lines.append(
            [
                row.benchmark,
                row.size,
                row.loop,
                _fmt(row.library, row.unit),
                _fmt(row.baseline, row.unit),
                row.baseline_name,
                "n/a" if row.ratio is None else f"{row.ratio:.2f}",
                "-" if row.target is None else f"<= {row.target:g}",
                met,
                peers,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)
