"""What a user gets from the wheel: run by a fresh virtual environment's Python, outside the tree.

Usage: ``python check_installed.py SOURCE_ROOT`` from a directory outside SOURCE_ROOT, after
``pip install`` of the built wheel. Fails (exit 1, naming what is wrong) unless:

- ``microscheduler`` is imported from the installed wheel, not from the source tree;
- the wheel installed what the README uses: ``py.typed``, ``__main__`` (``python -m
  microscheduler demo``), the extras' modules (fastapi, aiohttp, otel, ray, the pytest
  plugin and its entry point) and the extras themselves in the metadata;
- it installed nothing of the tests, benchmarks or examples;
- the README's quick start (examples/quickstart.py, run from here) prints what it says.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

EXPECTED_FILES = {
    "microscheduler/py.typed",
    "microscheduler/__init__.py",
    "microscheduler/__main__.py",
    "microscheduler/fastapi.py",
    "microscheduler/aiohttp.py",
    "microscheduler/otel.py",
    "microscheduler/pytest_plugin.py",
    "microscheduler/timeline.py",
    "microscheduler/ray/__init__.py",
}
EXPECTED_EXTRAS = {"fastapi", "aiohttp", "otel", "ray", "pytest", "cluster", "dev"}
FORBIDDEN_TOP_LEVEL = {"tests", "benchmarks", "examples", "docs"}


def main(source_root: Path) -> list[str]:
    problems = []
    import microscheduler

    where = Path(microscheduler.__file__).resolve()
    if where.is_relative_to(source_root):
        problems.append(f"microscheduler was imported from the source tree: {where}")
    distribution = importlib.metadata.distribution("microscheduler")
    files = {str(path) for path in distribution.files or ()}
    missing = EXPECTED_FILES - files
    if missing:
        problems.append(f"the wheel lacks {sorted(missing)}")
    stray = sorted(f for f in files if f.split("/", 1)[0] in FORBIDDEN_TOP_LEVEL)
    if stray:
        problems.append(f"the wheel installs files that are not the package: {stray[:5]}")
    extras = set(distribution.metadata.get_all("Provides-Extra") or ())
    if EXPECTED_EXTRAS - extras:
        problems.append(f"the metadata lacks the extras {sorted(EXPECTED_EXTRAS - extras)}")
    plugins = {ep.name: ep.value for ep in distribution.entry_points if ep.group == "pytest11"}
    if plugins != {"microscheduler": "microscheduler.pytest_plugin"}:
        problems.append(f"the pytest11 entry point is {plugins}")
    quickstart = subprocess.run(
        [sys.executable, str(source_root / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if quickstart.returncode != 0 or "hello from the UI lane" not in quickstart.stdout:
        problems.append(f"the quick start failed:\n{quickstart.stdout}{quickstart.stderr}")
    return problems


if __name__ == "__main__":
    found = main(Path(sys.argv[1]).resolve())
    for problem in found:
        print("!!", problem, file=sys.stderr)
    print("installed wheel:", "FAILED" if found else "ok (files, extras, entry point, quick start)")
    sys.exit(1 if found else 0)
