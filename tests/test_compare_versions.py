"""benchmarks.compare_versions: versions of the library taken from git run side by side."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_two_versions_from_git_give_a_row_each_with_their_ratio() -> None:
    """Two labels for one revision run in one process and print every row with both
    versions' medians, the first as the base of the ratios."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.compare_versions",
            "a=HEAD",
            "b=HEAD",
            "--rounds",
            "1",
            "-n",
            "200",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1] == "| row | a | b |"
    rows = {line.split("|")[1].strip(): line for line in lines[3:]}
    assert set(rows) == {"bulk", "overhead", "preempt p50"}
    for line in rows.values():
        first, second = (cell.strip() for cell in line.split("|")[2:4])
        assert first.endswith("(1.00)")
        assert second.endswith(")") and "(" in second
