"""The timeline picture: what it records from events and what its HTML holds."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from _helpers import Gate, const, task

from microscheduler import Priority, TaskExecutor, WorkerConfig
from microscheduler.timeline import Timeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.timeline_render import synthetic_events

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


def synthetic(runs: int, workers: int = 4) -> Timeline:
    """A timeline fed exactly ``runs`` short runs (some preempted and resumed)."""
    timeline = Timeline()
    for event in synthetic_events(runs, workers):
        timeline(event)
    return timeline


class TestRecording:
    async def test_runs_of_a_preempted_task(self) -> None:
        """A preempted task gives two runs: the first ends "preempted", the rerun waits
        from its preemption and completes; the preempting UI run sits between them."""
        timeline = Timeline()
        config = WorkerConfig(on_event=timeline)
        async with TaskExecutor.from_config(config) as executor:
            gate = Gate()
            indexing = executor.submit_nowait(task(gate, BG, name="index"))
            await gate.started.wait()
            await executor.execute(task(const(1), UI, name="chat"))
            gate.release.set()
            await indexing
        runs = timeline.runs
        assert [(r.task, r.attempt, r.outcome) for r in runs] == [
            ("index", 1, "preempted"),
            ("chat", 1, "completed"),
            ("index", 2, "completed"),
        ]
        first, chat, rerun = runs
        assert first.end <= chat.start <= chat.end <= rerun.start
        assert rerun.queued == first.end and rerun.wait == rerun.start - first.end
        assert all(r.worker_id == 0 and r.duration >= 0 for r in runs)

    async def test_a_run_still_going_is_drawn_as_running(self) -> None:
        """A run with no end yet appears with outcome "running" up to the last event."""
        timeline = Timeline()
        async with TaskExecutor.from_config(WorkerConfig(on_event=timeline)) as executor:
            gate = Gate()
            handle = executor.submit_nowait(task(gate, BG, name="long"))
            await gate.started.wait()
            assert [(r.task, r.outcome) for r in timeline.runs] == [("long", "running")]
            gate.release.set()
            await handle
        assert [(r.task, r.outcome) for r in timeline.runs] == [("long", "completed")]

    def test_width_is_validated(self) -> None:
        """A width below 100 pixels is refused with a message naming the field."""
        with pytest.raises(ValueError, match="width must be an int of at least 100"):
            Timeline(width=10)


class TestHtml:
    def test_page_is_self_contained(self, tmp_path: Path) -> None:
        """The written page has an inline SVG and nothing that would reach the network:
        no script, stylesheet link, import, url() or address other than the SVG
        namespace."""
        path = tmp_path / "t.html"
        synthetic(50).write(path)
        page = path.read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page
        for forbidden in ("<script", "<link", "@import", "url(", "<img", "<iframe"):
            assert forbidden not in page
        assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}

    def test_one_bar_and_hover_title_per_run_with_marks(self) -> None:
        """Each run is one class="run" bar whose title names task, key, lane, attempt,
        wait and run time; each preemption and each resume has its mark."""
        timeline = synthetic(40, workers=2)
        page = timeline.render()
        runs = timeline.runs
        assert page.count('class="run"') == len(runs) == 40
        preempted = sum(r.outcome == "preempted" for r in runs)
        assert preempted > 0
        assert page.count('class="preemption"') == preempted + 1  # and the legend's
        assert page.count('class="resume"') == sum(r.attempt > 1 for r in runs) + 1
        titles = re.findall(r'class="run"[^>]*><title>([^<]*)</title>', page)
        assert len(titles) == 40
        assert re.fullmatch(
            r"t\d+ \(no key\), (UI|LastEffort|Background) lane, attempt [12], worker \d"
            r"\nwaited [\d.]+ (s|ms|µs), ran [\d.]+ (s|ms|µs), (completed|preempted)",
            titles[0],
        )
        assert page.count('class="worker"') == 2 and 'id="worker-1"' in page

    def test_ten_thousand_runs_stay_a_small_page(self) -> None:
        """10,000 runs are drawn with every run counted (data-count) in at most a few
        thousand bars and marks: short runs merge, marks collapse per pixel."""
        timeline = synthetic(10_000)
        page = timeline.render()
        counts = [int(n) for n in re.findall(r'class="runs?"[^>]*data-count="(\d+)"', page)]
        assert sum(counts) == len(timeline.runs) == 10_000
        assert 'class="runs"' in page  # merging happened
        elements = page.count("<rect") + page.count("<path") + page.count("<text")
        assert elements < 8_000
        assert len(page) < 2_000_000


class TestWrite:
    async def test_a_task_name_utf8_cannot_encode_is_escaped(self, tmp_path: Path) -> None:
        """A valid task name holding a lone surrogate is written escaped; the page is
        UTF-8 and replaces the old one."""
        timeline = Timeline()
        page = tmp_path / "timeline.html"
        page.write_text("old page")
        async with TaskExecutor(WorkerConfig(on_event=timeline)) as executor:
            await executor.execute(task(const(1), name="report-\udcff.pdf"))
        timeline.write(page)
        text = page.read_bytes().decode("utf-8")  # strict: it must be valid UTF-8
        assert "report-\\udcff.pdf" in text
        assert os.listdir(tmp_path) == ["timeline.html"]

    def test_a_failed_write_leaves_the_old_page(self, tmp_path: Path) -> None:
        """A write that fails (here: rendering raises) leaves the old page intact and no
        temporary file behind."""

        class Broken(Timeline):
            def render(self) -> str:
                raise RuntimeError("cannot render")

        page = tmp_path / "timeline.html"
        page.write_text("old page")
        with pytest.raises(RuntimeError, match="cannot render"):
            Broken().write(page)
        assert page.read_text() == "old page"
        assert [p.name for p in tmp_path.iterdir()] == ["timeline.html"]
