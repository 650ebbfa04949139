"""The pytest plugin's fixtures, exercised in inner pytest runs through ``pytester``."""

from __future__ import annotations

import re
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

_INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

_BOTH_FIXTURES = """
import asyncio

import pytest

from microscheduler import Priority, Task, TaskExecutor, WorkerConfig
from microscheduler.pytest_plugin import ExecutorFactory

{mark}
async def test_executor_is_started_and_single_processor(executor: TaskExecutor) -> None:
    task = Task(name="ping", compute=lambda *_: "pong", priority=Priority.UI)
    assert await executor.execute(task) == "pong"
    assert executor.statistics().workers == 1

{mark}
async def test_factory_builds_from_counts_and_configs(executor_factory: ExecutorFactory) -> None:
    three = await executor_factory(3)
    two = await executor_factory(WorkerConfig(ui_workers=1, background_workers=1))
    assert (three.statistics().workers, two.statistics().workers) == (3, 2)
    results = await asyncio.gather(
        three.execute(Task(name="a", compute=lambda *_: 1)),
        two.execute(Task(name="b", compute=lambda *_: 2)),
    )
    assert results == [1, 2]
"""

_LEAKY = """
import asyncio

from microscheduler import Task


async def test_leaves_work_behind(executor):
    started = asyncio.Event()
    release = asyncio.Event()

    async def hold(_resource, _state, _interrupt):
        started.set()
        await release.wait()

    executor.submit_nowait(Task(name="running", compute=hold))
    executor.submit_nowait(Task(name="queued", compute=hold))
    await started.wait()


async def test_shuts_down_its_own_executor(executor_factory):
    executor = await executor_factory(1)
    release = asyncio.Event()

    async def hold(_resource, _state, _interrupt):
        await release.wait()

    executor.submit_nowait(Task(name="queued", compute=hold))
    await executor.shutdown()
"""


def _doc_snippet(name: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "integrations.md").read_text()
    match = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```python\n(.*?)```", text, re.S)
    assert match is not None, f"no snippet {name!r} in docs/integrations.md"
    return match.group(1)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


def test_both_fixtures_work_in_auto_mode(pytester: pytest.Pytester) -> None:
    """In auto mode, unmarked async tests get a started executor and working factory."""
    pytester.makeini(_INI.format(mode="auto"))
    pytester.makepyfile(test_inner=_BOTH_FIXTURES.format(mark=""))
    result = _run(pytester)
    result.assert_outcomes(passed=2)


def test_both_fixtures_work_in_strict_mode_with_the_asyncio_mark(pytester: pytest.Pytester) -> None:
    """In strict mode, tests marked @pytest.mark.asyncio get both fixtures."""
    pytester.makeini(_INI.format(mode="strict"))
    pytester.makepyfile(test_inner=_BOTH_FIXTURES.format(mark="@pytest.mark.asyncio"))
    result = _run(pytester)
    result.assert_outcomes(passed=2)


def test_unmarked_tests_work_in_strict_mode(pytester: pytest.Pytester) -> None:
    """In strict mode, unmarked async tests that request the fixtures run as asyncio tests,
    so the same module passes in both modes; other unmarked async tests are left alone."""
    pytester.makeini(_INI.format(mode="strict"))
    pytester.makepyfile(
        test_inner=_BOTH_FIXTURES.format(mark="")
        + textwrap.dedent(
            """
            def test_sync_test_using_nothing() -> None:
                assert True

            class TestInAClass:
                async def test_method(self, executor: TaskExecutor) -> None:
                    assert executor.statistics().workers == 1
            """
        )
    )
    pytester.makepyfile(
        test_untouched="""
        async def test_not_ours():
            pass
        """
    )
    result = _run(pytester, "-rA")
    result.stdout.fnmatch_lines(["PASSED test_inner.py::TestInAClass::test_method"])
    (not_run,) = [line for line in result.outlines if line.startswith(("FAILED", "SKIPPED"))]
    assert "test_untouched.py::test_not_ours" in not_run
    assert result.parseoutcomes()["passed"] == 4


def test_docs_snippet_passes_in_strict_mode(pytester: pytest.Pytester) -> None:
    """The test module shown in the README and docs passes unchanged in strict mode."""
    pytester.makeini(_INI.format(mode="strict"))
    pytester.makepyfile(test_docs=_doc_snippet("pytest"))
    result = _run(pytester)
    result.assert_outcomes(passed=2)


def test_pytest_extra_ships_pytest_asyncio() -> None:
    """The pytest extra brings pytest and pytest-asyncio, which the fixtures run on."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[<>=!~; \[]", requirement)[0] for requirement in extras["pytest"]}
    assert {"pytest", "pytest-asyncio"} <= names


def test_work_left_running_fails_the_test_with_a_clear_message(pytester: pytest.Pytester) -> None:
    """A test leaving work queued and running errors at teardown; one that shut down does not."""
    pytester.makeini(_INI.format(mode="auto"))
    pytester.makepyfile(test_inner=_LEAKY)
    result = _run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaves_work_behind*",
            "*microscheduler: the test ended with work still in its executor:",
            "*executor 1 of 1 (<TaskExecutor *>): 1 running, 1 queued"
            " (UI: 0, LastEffort: 0, Background: 1)",
            "*await every task the test starts (or cancel and await it), or shut the executor"
            " down, before the test returns",
        ]
    )
    assert "test_shuts_down_its_own_executor" not in "\n".join(
        line for line in result.outlines if line.startswith("ERROR")
    )


def test_a_local_fixture_of_the_same_name_takes_precedence(pytester: pytest.Pytester) -> None:
    """A conftest fixture named executor overrides the plugin's, leaving other tests alone."""
    pytester.makeini(_INI.format(mode="auto"))
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def executor():
            return "mine"
        """
    )
    pytester.makepyfile(
        test_inner="""
        def test_sees_its_own_fixture(executor):
            assert executor == "mine"
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)


def test_plugin_loads_and_lists_fixtures_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    """With pytest-asyncio unimportable the plugin still loads and plain tests still run."""
    pytester.makepyfile(
        test_inner="""
        def test_plain():
            assert True
        """
    )
    # First on sys.path (the working directory, for ``python -c``), it stands in for a
    # missing pytest-asyncio: importing it fails as an absent package would.
    pytester.makepyfile(pytest_asyncio="raise ImportError('pytest-asyncio is not installed')")
    code = textwrap.dedent(
        """
        import sys

        import pytest

        options = ["-p", "no:asyncio", "-p", "no:cacheprovider", "-W", "error"]
        status = pytest.main(options)
        assert "pytest_asyncio" not in sys.modules, "pytest-asyncio was imported"
        assert "microscheduler.pytest_plugin" in sys.modules, "the plugin was not loaded"
        sys.exit(status or pytest.main([*options, "--fixtures"]))
        """
    )
    result = pytester.run(sys.executable, "-c", code, timeout=120)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*1 passed*", "*executor_factory*", "*executor*"])


def test_without_pytest_asyncio_the_fixtures_say_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    """With pytest-asyncio missing, a test requesting a fixture fails naming the extra."""
    pytester.makepyfile(
        test_inner="""
        def test_wants_an_executor(executor):
            pass
        """
    )
    pytester.makepyfile(pytest_asyncio="raise ImportError('pytest-asyncio is not installed')")
    code = textwrap.dedent(
        """
        import sys

        import pytest

        sys.exit(pytest.main(["-p", "no:asyncio", "-p", "no:cacheprovider", "-W", "error"]))
        """
    )
    result = pytester.run(sys.executable, "-c", code, timeout=120)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*microscheduler's executor fixtures run on pytest-asyncio, which is not installed:"
            " pip install 'microscheduler[[]pytest[]]'",
            "*1 error*",
        ]
    )


def test_docs_snippet_passes(pytester: pytest.Pytester) -> None:
    """The test module shown in docs/integrations.md passes as written."""
    pytester.makeini(_INI.format(mode="auto"))
    pytester.makepyfile(test_docs=_doc_snippet("pytest"))
    result = _run(pytester)
    result.assert_outcomes(passed=2)
