"""The timeline picture in a real browser: headless Chromium renders the demo's page.

Assertions are on the rendered page (the DOM Chromium built and drew, queried through
the DevTools protocol), not on the HTML text. Chromium comes from Debian's ``chromium``
package, which ``.ci/run`` installs when it is missing. Setting
``MICROSCHEDULER_UPDATE_DOCS_IMAGES=1`` makes the demo test write its screenshot to
``docs/img/timeline.png`` (the README's picture) instead of a temporary directory.
"""

from __future__ import annotations

import io
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_timeline import synthetic

import microscheduler._demo
from microscheduler import SchedulerEvent
from microscheduler.timeline import Timeline

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._chromium import Chromium, find_chromium  # noqa: E402

COUNT_RUNS = (
    "[...document.querySelectorAll('#timeline .run, #timeline .runs')]"
    ".reduce((total, bar) => total + Number(bar.dataset.count), 0)"
)
VISIBLE = (
    "[...document.querySelectorAll('#timeline {}')]"
    ".filter(e => {{ const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; }})"
    ".length"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    """One headless Chromium for this module's tests."""
    if find_chromium() is None:
        pytest.skip(
            "no Chromium on this machine and none could be installed here: .ci/run installs "
            "Debian's chromium package (apt-get install chromium) before the tests"
        )
    with Chromium(width=1300, height=400) as chromium:
        yield chromium


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_demo_timeline_renders_every_run_and_a_preemption(
    browser: Chromium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's timeline, drawn by Chromium, has one bar per run in the demo's events,
    at least one visible preemption mark, no console error and no request but the file."""
    events: list[SchedulerEvent] = []

    class Recording(Timeline):
        def __call__(self, event: SchedulerEvent) -> None:
            events.append(event)
            super().__call__(event)

    monkeypatch.setattr(microscheduler._demo, "Timeline", Recording)
    page = tmp_path / "demo.html"
    out = io.StringIO()
    args = ["demo", "--duration", "1.5", "--seed", "1", "--timeline", str(page)]
    assert microscheduler._demo.main(args, out=out) == 0
    assert f"timeline           written to {page}" in out.getvalue()
    runs = sum(e.kind in ("started", "resumed") for e in events)
    assert runs >= 3 and any(e.kind == "preempted" for e in events)

    browser.console_errors.clear()
    browser.requests.clear()
    browser.open(page)
    assert browser.evaluate(VISIBLE.format(".run")) == runs
    assert browser.evaluate("document.querySelectorAll('#timeline .runs').length") == 0
    assert browser.evaluate(VISIBLE.format(".preemption")) >= 2  # a run's, the legend's
    rows = browser.evaluate("document.querySelectorAll('#timeline .worker').length")
    assert rows == 1  # single-processor mode: one worker
    assert browser.console_errors == []
    assert browser.requests == [page.resolve().as_uri()]

    update = os.environ.get("MICROSCHEDULER_UPDATE_DOCS_IMAGES") == "1"
    shot = ROOT / "docs" / "img" / "timeline.png" if update else tmp_path / "timeline.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.screenshot(shot, "body")
    width, height = png_size(shot)
    assert width > 1000 and 100 < height < 400


def test_ten_thousand_runs_render_with_every_run_counted(browser: Chromium, tmp_path: Path) -> None:
    """A 10,000-run timeline renders without console errors, accounts for every run in
    its bars, and keeps the page's DOM under 10,000 elements."""
    page = tmp_path / "big.html"
    synthetic(10_000).write(page)
    browser.console_errors.clear()
    browser.open(page)
    assert browser.evaluate(COUNT_RUNS) == 10_000
    assert browser.evaluate("document.getElementsByTagName('*').length") < 10_000
    assert browser.console_errors == []
