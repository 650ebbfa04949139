"""``python -m microscheduler demo`` runs and tells its story."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from microscheduler._demo import _documents, main


@pytest.fixture(scope="module")
def timed_story() -> tuple[str, float]:
    """What one short single-processor demo run prints, and how long it took (run once for
    the module's tests)."""
    out = io.StringIO()
    began = time.perf_counter()
    assert main(["demo", "--duration", "1.5", "--seed", "1"], out=out) == 0
    return out.getvalue(), time.perf_counter() - began


@pytest.fixture
def story(timed_story: tuple[str, float]) -> str:
    """What the module's demo run printed."""
    return timed_story[0]


def test_demo_runs_for_its_duration(timed_story: tuple[str, float]) -> None:
    """The demo lasts at least --duration: UI requests go on arriving until it is up."""
    text, elapsed = timed_story
    assert elapsed >= 1.5
    *_, last_arrival = (line for line in text.splitlines() if " arrives" in line)
    assert float(last_arrival.split("s]")[0].strip("[ ")) > 1.0  # after the 0.5 s max gap


def test_demo_shows_preemption_resume_and_summary(story: str) -> None:
    """A short single-processor demo prints preemptions, resumes and the summary."""
    text = story
    assert "-> preempts indexing" in text
    assert "indexing preempted in document" in text
    assert "resumes from its checkpoint" in text
    assert "Summary" in text
    assert "start latency p50" in text
    assert "checkpoints saved" in text


def test_a_resume_is_told_after_the_answer_it_waited_for(story: str) -> None:
    """In single-processor mode the UI answer that preempted the indexing is printed before
    the indexing's resume."""
    lines = story.splitlines()
    resumes = [i for i, line in enumerate(lines) if "resumes from its checkpoint" in line]
    assert resumes
    for i in resumes:
        assert " answered: " in lines[i - 1], lines[i - 1 : i + 1]


def test_counts_are_spelled_in_the_singular_for_one(story: str) -> None:
    """One document is "1 document", never "1 documents", in every count the demo prints."""
    assert (_documents(1), _documents(2)) == ("1 document", "2 documents")
    assert not re.search(r"\b1 documents\b", story)


def test_demo_with_dedicated_background_workers() -> None:
    """With --workers 2 the UI worker is separate and nothing is preempted."""
    out = io.StringIO()
    main(["demo", "--duration", "1", "--workers", "2"], out=out)
    assert "preemptions        0" in out.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--duration", "0"], "--duration must be between 0 and 600 seconds"),
        (
            ["--preempt-background"],
            "--preempt-background needs --workers 2 or more: with one worker, UI work always "
            "preempts background work",
        ),
    ],
)
def test_demo_rejects_bad_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid options exit with the demo subcommand's usage and an error naming the option."""
    with pytest.raises(SystemExit) as info:
        main(["demo", *argv], out=io.StringIO())
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m microscheduler demo [-h] [--duration DURATION]")
    assert err.endswith(f"\npython -m microscheduler demo: error: {message}\n")


def test_module_entry_point_help() -> None:
    """python -m microscheduler demo --help explains the options."""
    done = subprocess.run(
        [sys.executable, "-m", "microscheduler", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    for option in ("--duration", "--workers", "--seed", "--preempt-background"):
        assert option in done.stdout


@pytest.mark.parametrize("where", ["missing-directory", "a-directory"])
def test_an_unwritable_timeline_path_fails_before_the_run(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--timeline at a path that cannot be written fails at once, with one line naming
    the path, instead of running the whole demo and then printing a traceback."""
    path = (
        str(tmp_path / "no-such-dir" / "t.html") if where == "missing-directory" else str(tmp_path)
    )
    out = io.StringIO()
    with pytest.raises(SystemExit) as info:
        main(["demo", "--duration", "0.5", "--timeline", path], out=out)
    assert info.value.code == 2
    assert out.getvalue() == ""  # nothing ran
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"python -m microscheduler demo: error: --timeline {path!r}: ")
