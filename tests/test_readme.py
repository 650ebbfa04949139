"""The README's snippets and commands work as written.

Every Python block in the README is marked: ``<!-- example: name -->`` blocks are
``examples/name.py`` below its docstring (run below); ``<!-- snippet: name -->`` blocks are
the logging set-up (run below) or verbatim copies of docs/integrations.md's snippets, which
the integration tests run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)]


def marked_blocks(text: str) -> dict[tuple[str, str], str]:
    found = re.findall(r"<!-- (example|snippet): ([\w-]+) -->\n```python\n(.*?)```", text, re.S)
    return {(kind, name): code for kind, name, code in found}


def example_body(name: str) -> str:
    docstring, blank, body = (ROOT / "examples" / f"{name}.py").read_text().split("\n", 2)
    assert docstring.startswith('"""') and blank == ""
    return body


def test_every_python_block_is_run() -> None:
    """Every Python block in the README is an examples/ file, the logging snippet (run
    below) or a verbatim copy of a docs/integrations.md snippet, which tests/test_fastapi.py,
    test_aiohttp.py and test_pytest_plugin.py run for real."""
    marked = marked_blocks(README)
    assert len(marked) == len(python_blocks(README))
    docs = python_blocks((ROOT / "docs" / "integrations.md").read_text())
    examples = {name for kind, name in marked if kind == "example"}
    assert examples == {"quickstart", "configured", "observability", "cpu_bound"}
    for (kind, name), code in marked.items():
        if kind == "example":
            assert code == example_body(name), name
        elif name == "resumable_indexer":
            # a verbatim part of the example that tests/test_crash_resume.py kills and reruns
            assert code in (ROOT / "examples" / "resumable_indexer.py").read_text(), name
        elif name != "logging":
            assert code in docs, name


def test_configured_example_output() -> None:
    """The configured example answers in each lane, closes its clients, and logs its
    lifecycle through the stdlib logger 'microscheduler'."""
    # asyncio's debug mode (CI's second pass) may log slow steps on stderr: not ours.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "configured.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "answered by UIWorker-0",
        "next page prefetched by UIWorker-0",
        "crunched 5 pages",
        "completed 3 tasks",
        "clients closed: True",
    ]
    assert done.stderr.splitlines() == [
        "INFO microscheduler: executor_started ui_workers=1 background_workers=2 "
        "single_processor=False",
        "INFO microscheduler: executor_stopped completed=3 failed=0 cancelled=0 timed_out=0 "
        "preempted=0 rescheduled=0",
    ]


def test_logging_snippet_shows_the_events() -> None:
    """The README's logging set-up shows the lifecycle at INFO and every task's events at
    DEBUG, on stderr."""
    snippet = marked_blocks(README)["snippet", "logging"]
    program = snippet + textwrap.dedent(
        """
        import asyncio

        from microscheduler import Task, TaskExecutor


        async def main() -> None:
            async with TaskExecutor(1) as executor:
                await executor.execute(Task(name="seen", compute=lambda *_: 1))


        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("INFO:microscheduler:executor_started ") for line in lines)
    assert any(line.startswith("DEBUG:microscheduler:task_started task=seen ") for line in lines)


def test_quickstart_output() -> None:
    """The quick start answers the UI request and resumes the indexing once, and prints
    nothing else: the library logs nothing until logging is configured."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines() == [
        "hello from the UI lane",
        "indexed 20 documents in 2 runs",
        "preempted 1 time(s), completed 2 tasks",
    ]


def test_quickstart_file_is_the_readme_example() -> None:
    """examples/quickstart.py is the README's first snippet, the quick start, under a
    docstring."""
    assert example_body("quickstart") == python_blocks(README)[0]


def test_observability_file_is_the_readme_example() -> None:
    """examples/observability.py is the README's observability snippet under a docstring."""
    docstring, blank, body = (ROOT / "examples" / "observability.py").read_text().split("\n", 2)
    assert docstring.startswith('"""') and blank == ""
    assert body == marked_blocks(README)["example", "observability"]


def test_observability_output(tmp_path: Path) -> None:
    """The observability example sees the preemption, reports the UI lane's queue wait
    and writes its timeline page."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "observability.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("20")]
    assert lines[0] == "index: run 1 preempted on worker 0"
    assert re.fullmatch(r"UI queue wait p99: \d+\.\d\d ms over 1 run", lines[1])
    assert len(lines) == 2
    assert 'class="preemption"' in (tmp_path / "timeline.html").read_text()


def test_two_setup_commands() -> None:
    """The README keeps exactly two set-up commands: the demo and the tests, and CI runs
    the same install and test command."""
    demo, tests = bash_blocks(README)
    assert demo.endswith("python -m microscheduler demo")
    assert tests.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[dev]'" in ci
    assert "pip install -e '.[dev]'" in tests
    assert re.search(r"^\s*pytest$", ci, flags=re.MULTILINE)  # the README's command, as it is


def test_repository_cites_only_its_own_documents() -> None:
    """No file refers to a specification document outside the repository: the contract is
    docs/design.md."""
    external = re.compile(r"\b" + "SP" + r"EC\b")  # spelled apart so this file passes too
    roots = ["README.md", "CHANGELOG.md", "pyproject.toml", "docs", "benchmarks", "tests"]
    roots += ["examples", "microscheduler"]
    paths = [ROOT / root for root in roots]
    files = [p for path in paths for p in ([path] if path.is_file() else path.rglob("*"))]
    citing = [
        str(file.relative_to(ROOT))
        for file in files
        if file.suffix in {".md", ".py", ".toml"} and external.search(file.read_text())
    ]
    assert citing == []


def test_unreleased_first_version_fixes_nothing() -> None:
    """While no version has been released, the changelog has no "Fixed" section: a bug no
    release ever had is not news to users."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert not re.search(r"^## \[\d", changelog, flags=re.MULTILINE)  # nothing released yet
    assert "### Fixed" not in changelog


def test_cpu_bound_example_output() -> None:
    """examples/cpu_bound.py counts its primes exactly, in a child process that urgent
    work paused (two runs of one execution), and says how fast the urgent work started."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "cpu_bound.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert re.fullmatch(r"urgent work started \d+ us after its submit", first), first
    assert re.fullmatch(r"primes below 300,000: 25,997 \(runs: [12]\)", second), second
