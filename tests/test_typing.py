"""Type checkers infer what the public API promises (see tests/typing/check_public_api.py).

Both checkers users run are exercised: mypy (``--strict``) and pyright, as basedpyright,
which is what VS Code's Python support reports. Each ``assert_type`` in the checked file is
an error for a checker that infers anything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = "tests/typing/check_public_api.py"


def run_checker(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.timeout(180)
def test_mypy_infers_handle_results_and_accepts_int_priorities() -> None:
    """mypy --strict infers a handle's result type through await and gather, and takes int lanes."""
    checked = run_checker("mypy", "--strict", "--no-incremental", CHECKED)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success: no issues found in 1 source file" in checked.stdout


@pytest.mark.timeout(180)
def test_pyright_infers_handle_results_and_accepts_int_priorities() -> None:
    """basedpyright infers a handle's result type through await and gather, and takes int lanes."""
    checked = run_checker("basedpyright", "--pythonpath", sys.executable, CHECKED)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 errors" in checked.stdout
