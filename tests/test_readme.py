"""The README's snippets and commands work as written.

The quick start is ``examples/quickstart.py`` (run below); the integration snippets are
verbatim copies of those in docs/integrations.md, which the integration tests run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)]


def test_integration_snippets_are_the_tested_docs() -> None:
    """The README's integration snippets are verbatim copies of docs/integrations.md's,
    which tests/test_fastapi.py, test_aiohttp.py, test_pytest_plugin.py and
    tests/cluster/test_ray_docs.py run for real."""
    docs = python_blocks((ROOT / "docs" / "integrations.md").read_text())
    _quickstart, *integration_blocks = python_blocks(README)
    assert len(integration_blocks) == 4  # every other README snippet is checked here
    for block in integration_blocks:
        assert block in docs


def test_quickstart_output() -> None:
    """The quick start answers the UI request and resumes the indexing once."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("20")]
    assert lines == [
        "hello from the UI lane",
        "indexed 20 documents in 2 runs",
        "preempted 1 time(s), completed 2 tasks",
    ]


def test_quickstart_file_is_the_readme_example() -> None:
    """examples/quickstart.py is the README's quick-start snippet under a docstring."""
    docstring, blank, body = (ROOT / "examples" / "quickstart.py").read_text().split("\n", 2)
    assert docstring.startswith('"""') and blank == ""
    assert body == python_blocks(README)[0]


def test_two_setup_commands() -> None:
    """The README keeps exactly two set-up commands: the demo and the tests, and CI runs
    the same install and test command."""
    demo, tests = bash_blocks(README)
    assert demo.endswith("python -m microscheduler demo")
    assert tests.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[dev]'" in ci
    assert "pip install -e '.[dev]'" in tests
    assert re.search(r"^pytest\b", ci, flags=re.MULTILINE)
