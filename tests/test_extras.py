"""The extras install what their names promise, and the README's dev install stays light."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTRAS: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
    "optional-dependencies"
]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0] for requirement in requirements}


def test_the_dev_extra_does_not_download_ray() -> None:
    """`pip install -e '.[dev]'` (the README's test command) brings no Ray."""
    assert "ray" not in names(EXTRAS["dev"])


def test_the_cluster_extra_brings_what_the_cluster_tests_need() -> None:
    """The cluster extra is the dev extra plus Ray, for tests/cluster."""
    assert set(EXTRAS["cluster"]) == {"microscheduler[dev]", "microscheduler[ray]"}
    assert names(EXTRAS["ray"]) == {"ray"}


def run_cluster_tests_without_ray(**env: str) -> subprocess.CompletedProcess[str]:
    """pytest on tests/cluster in a process where ``import ray`` fails, as without Ray."""
    code = (
        "import sys; sys.modules['ray'] = None; import pytest; "
        "sys.exit(pytest.main(['tests/cluster', '-q', '-rs', '-p', 'no:cacheprovider']))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_ray_the_cluster_tests_are_skipped_naming_the_extra() -> None:
    """Without Ray each cluster test module is reported skipped, with the install command."""
    run = run_cluster_tests_without_ray()
    # Every module skipped at collection: pytest's "no tests ran" status, not a failure.
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, run.stdout + run.stderr
    assert "Ray is not installed: pip install -e '.[cluster]'" in run.stdout
    modules = len(list((ROOT / "tests" / "cluster").glob("test_*.py")))
    assert re.search(rf"\b{modules} skipped\b", run.stdout), run.stdout


def test_ci_can_require_ray_for_the_cluster_tests() -> None:
    """With MICROSCHEDULER_REQUIRE_RAY=1 a missing Ray fails the run instead of skipping."""
    run = run_cluster_tests_without_ray(MICROSCHEDULER_REQUIRE_RAY="1")
    assert run.returncode != 0
    assert "skipped" not in run.stdout.splitlines()[-1], run.stdout
