"""A timeline picture of what an executor did: one self-contained HTML file.

Pass a :class:`Timeline` as the executor's event callback, run the work, then write the
picture::

    timeline = Timeline()
    async with TaskExecutor.from_config(WorkerConfig(on_event=timeline)) as executor:
        ...
    timeline.write("timeline.html")

The file is plain HTML with one inline SVG: no script, no stylesheet or font from the
network, so it opens from disk in any browser. Each worker is a row; each run of a task is
a bar coloured by the lane it ran from; a run ended by a preemption carries a mark at its
end and a rerun a mark at its start; hovering a bar shows the task, key, attempt, queue
wait and run time. Runs too short to see at the picture's scale are merged into one bar
per pair of pixels (its hover text counts them), so a run of any length stays a small
page: 10,000 runs draw a few thousand elements at most.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
import tempfile
from collections.abc import Iterable

from ._events import SchedulerEvent
from ._priority import Priority

__all__ = ("Run", "Timeline")

_LANE_COLOURS = {
    Priority.UI: "#d1495b",
    Priority.LAST_EFFORT: "#edae49",
    Priority.BACKGROUND: "#00798c",
}
_RUN_ENDS = frozenset({"preempted", "completed", "failed", "cancelled", "timed_out"})
_LEFT, _RIGHT, _TOP, _ROW, _BAR = 90, 20, 70, 34, 22
_MERGE_PX = 2.0  # runs narrower than this are merged into one bar per this many pixels


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One run of one execution on one worker, as the timeline draws it.

    Attributes:
        task: The task's name.
        key: The task's key, or None.
        priority: The lane the run was taken from.
        worker_id: The worker that ran it.
        attempt: 1 for the first run, 2 for the first rerun after a preemption, ...
        queued: When it (last) entered a lane, in ``loop.time()`` seconds.
        start: When the run began.
        end: When the run ended (for a run still going when the picture was taken, the
            time of the last event seen).
        outcome: ``"completed"``, ``"failed"``, ``"cancelled"``, ``"timed_out"``,
            ``"preempted"`` or ``"running"``.
    """

    task: str
    key: str | None
    priority: Priority
    worker_id: int
    attempt: int
    queued: float
    start: float
    end: float
    outcome: str

    @property
    def wait(self) -> float:
        """Seconds the run waited in its lane before it started."""
        return self.start - self.queued

    @property
    def duration(self) -> float:
        """Seconds the run took."""
        return self.end - self.start


class Timeline:
    """Collects an executor's events and draws them as an HTML page.

    A ``Timeline`` is an ``on_event`` callback: pass the instance itself, as
    ``WorkerConfig(on_event=timeline)`` (or in a tuple with other callbacks). It keeps
    every run it saw, so give each executor (or each stretch of work to picture) its own.

    Args:
        width: Width of the time axis in pixels.
        title: The page's heading.
    """

    def __init__(self, *, width: int = 1100, title: str = "microscheduler timeline") -> None:
        if not isinstance(width, int) or width < 100:
            raise ValueError(f"width must be an int of at least 100 pixels, got {width!r}")
        self.width = width
        self.title = title
        self._runs: list[Run] = []
        self._queued: dict[int, float] = {}  # execution -> when it last entered a lane
        self._open: dict[int, SchedulerEvent] = {}  # execution -> its running run's start
        self._first: float | None = None
        self._last = 0.0

    def __call__(self, event: SchedulerEvent) -> None:
        """Record one event (the ``on_event`` protocol)."""
        if self._first is None:
            self._first = event.time
        self._last = max(self._last, event.time)
        execution = event.execution
        kind = event.kind
        if kind == "submitted":
            self._queued[execution] = event.time
        elif kind in ("started", "resumed"):
            self._open[execution] = event
        elif kind in _RUN_ENDS:
            began = self._open.pop(execution, None)
            if began is not None:
                self._runs.append(self._run(began, event.time, kind))
            if kind == "preempted":
                self._queued[execution] = event.time
            else:
                self._queued.pop(execution, None)

    def _run(self, began: SchedulerEvent, end: float, outcome: str) -> Run:
        assert began.worker_id is not None
        return Run(
            task=began.task,
            key=began.key,
            priority=began.priority,
            worker_id=began.worker_id,
            attempt=began.attempt,
            queued=self._queued.get(began.execution, began.time),
            start=began.time,
            end=end,
            outcome=outcome,
        )

    @property
    def runs(self) -> list[Run]:
        """Every run seen so far, ended ones in the order they ended, then running ones."""
        going = [self._run(began, self._last, "running") for began in self._open.values()]
        return [*self._runs, *going]

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the page to ``path`` (UTF-8), replacing any file there.

        What UTF-8 cannot encode (a task name holding a lone surrogate) is written as a
        backslash escape. The page is written to a temporary file beside ``path`` and
        renamed over it, so a write that fails leaves the old page as it was.
        """
        data = self.render().encode("utf-8", errors="backslashreplace")
        target = os.fspath(path)
        try:
            mode = os.stat(target).st_mode & 0o777  # keep the old page's permissions
        except FileNotFoundError:
            mode = 0o644
        directory = os.path.dirname(os.path.abspath(target))
        fd, temporary = tempfile.mkstemp(prefix=".timeline-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.chmod(temporary, mode)
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise

    def render(self) -> str:
        """Return the page as a string."""
        return _Page(self.runs, self.width, self.title).html()


def _tick_step(span: float, ticks: int = 8) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    raw = max(span, 1e-6) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def _describe(run: Run) -> str:
    key = f"key {run.key}" if run.key is not None else "no key"
    return (
        f"{run.task} ({key}), {run.priority} lane, attempt {run.attempt}, worker "
        f"{run.worker_id}\nwaited {_seconds(run.wait)}, ran {_seconds(run.duration)}, "
        f"{run.outcome}"
    )


class _Page:
    """Lays out the runs and writes the SVG inside the HTML page."""

    def __init__(self, runs: list[Run], width: int, title: str) -> None:
        self.runs = runs
        self.width = width
        self.title = title
        self.workers = sorted({run.worker_id for run in runs})
        self.origin = min((run.queued for run in runs), default=0.0)
        end = max((run.end for run in runs), default=self.origin)
        self.span = max(end - self.origin, 1e-6)
        self.scale = width / self.span
        self.out: list[str] = []

    def x(self, time: float) -> float:
        return _LEFT + (time - self.origin) * self.scale

    def html(self) -> str:
        height = _TOP + _ROW * max(1, len(self.workers)) + 40
        total = _LEFT + self.width + _RIGHT
        preempted = sum(run.outcome == "preempted" for run in self.runs)
        summary = (
            f"{len(self.runs)} runs on {len(self.workers)} "
            f"worker{'s' if len(self.workers) != 1 else ''} over {_seconds(self.span)}; "
            f"{preempted} preempted"
        )
        self.out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" width="{total}" '
            f'height="{height}" viewBox="0 0 {total} {height}">'
        ]
        self.legend()
        self.axis(height)
        for row, worker in enumerate(self.workers):
            self.row(row, worker, [run for run in self.runs if run.worker_id == worker])
        self.out.append("</svg>")
        return _TEMPLATE.format(
            title=html.escape(self.title), summary=html.escape(summary), svg="\n".join(self.out)
        )

    def legend(self) -> None:
        out, x = self.out, _LEFT
        for priority, colour in _LANE_COLOURS.items():
            out.append(
                f'<g class="legend-lane"><rect x="{x}" y="14" width="14" height="14" '
                f'fill="{colour}"/><text x="{x + 20}" y="26">{priority}</text></g>'
            )
            x += 130
        out.append(f'<g class="legend-mark">{_preempt_mark(x + 7, 14)}')
        out.append(f'<text x="{x + 20}" y="26">preempted</text></g>')
        x += 120
        out.append(f'<g class="legend-mark">{_resume_mark(x + 4, 14 - _BAR + 2)}')
        out.append(f'<text x="{x + 20}" y="26">resumed</text></g>')

    def axis(self, height: float) -> None:
        out, step = self.out, _tick_step(self.span)
        bottom = height - 30
        out.append(
            f'<g class="axis"><line x1="{_LEFT}" y1="{bottom}" x2="{_LEFT + self.width}" '
            f'y2="{bottom}" stroke="#555"/>'
        )
        for i in range(int(self.span / step) + 1):
            x = self.x(self.origin + i * step)
            out.append(
                f'<line class="tick" x1="{x:.1f}" y1="{_TOP - 8}" x2="{x:.1f}" y2="{bottom + 4}"'
                f' stroke="#ddd"/><text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">'
                f"{_seconds(i * step) if i else '0'}</text>"
            )
        out.append("</g>")

    def row(self, row: int, worker: int, runs: Iterable[Run]) -> None:
        out = self.out
        top = _TOP + row * _ROW
        out.append(
            f'<g class="worker" id="worker-{worker}"><text x="{_LEFT - 10}" '
            f'y="{top + _BAR / 2 + 5}" text-anchor="end">worker {worker}</text>'
        )
        merged: dict[int, list[Run]] = {}
        marks: list[str] = []
        for run in sorted(runs, key=lambda r: r.start):
            x0, x1 = self.x(run.start), self.x(run.end)
            if x1 - x0 < _MERGE_PX:
                merged.setdefault(int((x0 - _LEFT) // _MERGE_PX), []).append(run)
            else:
                out.append(
                    f'<rect class="run" x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" '
                    f'height="{_BAR}" fill="{_LANE_COLOURS[run.priority]}" '
                    f'data-count="1"><title>{html.escape(_describe(run))}</title></rect>'
                )
            if run.outcome == "preempted":
                marks.append(_preempt_mark(x1, top))
            if run.attempt > 1:
                marks.append(_resume_mark(x0, top))
        for bucket, group in merged.items():
            self.merged(bucket, top, group)
        # One mark per pixel at most: thousands of preemptions stay a bounded picture.
        out.extend(dict.fromkeys(marks))
        out.append("</g>")

    def merged(self, bucket: int, top: int, group: list[Run]) -> None:
        by_lane = {p: sum(r.duration for r in group if r.priority is p) for p in Priority}
        lane = max(by_lane, key=lambda p: by_lane[p])
        counts = ", ".join(
            f"{sum(r.priority is p for r in group)} {p}"
            for p in Priority
            if any(r.priority is p for r in group)
        )
        tasks = sorted({r.task for r in group})
        names = ", ".join(tasks[:5]) + (", ..." if len(tasks) > 5 else "")
        title = (
            f"{len(group)} short runs merged ({counts}): {names}\n"
            f"ran {_seconds(sum(r.duration for r in group))} in all, longest wait "
            f"{_seconds(max(r.wait for r in group))}"
        )
        x = _LEFT + bucket * _MERGE_PX
        self.out.append(
            f'<rect class="runs" x="{x:.1f}" y="{top}" width="{_MERGE_PX}" height="{_BAR}" '
            f'fill="{_LANE_COLOURS[lane]}" data-count="{len(group)}">'
            f"<title>{html.escape(title)}</title></rect>"
        )


def _preempt_mark(x: float, top: float) -> str:
    # A downward triangle above the bar's end: the run was cut off here.
    return (
        f'<path class="preemption" d="M{x - 5:.0f},{top - 7} h10 l-5,7 z" fill="#222">'
        f"<title>preempted</title></path>"
    )


def _resume_mark(x: float, top: float) -> str:
    # A right-pointing triangle at the bar's start: a rerun picked up from its snapshot.
    return (
        f'<path class="resume" d="M{x:.0f},{top + _BAR + 1} v7 l7,-3.5 z" fill="#222">'
        f"<title>resumed</title></path>"
    )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px;
         color: #222; background: #fff; }}
  h1 {{ font-size: 18px; margin: 0 0 4px; }}
  p {{ margin: 0 0 8px; color: #555; font-size: 13px; }}
  svg text {{ font-size: 12px; fill: #333; }}
  svg .run {{ stroke: #fff; stroke-width: 1; }}
  svg .run:hover, svg .runs:hover {{ stroke: #000; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{summary}. Hover a bar for its task, key, attempt, wait and run time.</p>
{svg}
</body>
</html>
"""
