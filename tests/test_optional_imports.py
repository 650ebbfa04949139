"""The core package stands alone: the web frameworks, OpenTelemetry and Ray are optional extras."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_FRAMEWORKS = (
    "fastapi",
    "starlette",
    "aiohttp",
    "httpx",
    "uvicorn",
    "pydantic",
    "opentelemetry",
    "ray",
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_core_imports_with_neither_fastapi_nor_aiohttp_nor_ray_installed() -> None:
    """With the optional frameworks unimportable, import microscheduler and its API work."""
    result = _run(
        f"""
        import sys

        for name in {_FRAMEWORKS!r}:
            sys.modules[name] = None  # importing any of them now raises ImportError

        import microscheduler
        import microscheduler.pytest_plugin

        missing = [name for name in microscheduler.__all__ if not hasattr(microscheduler, name)]
        assert not missing, missing
        executor = microscheduler.TaskExecutor(1)
        assert executor.statistics().completed == 0
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_importing_the_core_pulls_in_no_web_framework_and_no_ray() -> None:
    """import microscheduler leaves fastapi, aiohttp, opentelemetry, Ray and friends unimported."""
    result = _run(
        f"""
        import sys

        import microscheduler
        import microscheduler.pytest_plugin

        print(sorted(name for name in {_FRAMEWORKS!r} if name in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_integrations_without_their_framework_say_which_extra_to_install() -> None:
    """Importing an integration whose framework is missing names the extra to install."""
    result = _run(
        """
        import sys

        sys.modules["fastapi"] = None
        sys.modules["aiohttp"] = None
        sys.modules["opentelemetry"] = None
        sys.modules["ray"] = None
        for module in (
            "microscheduler.fastapi",
            "microscheduler.aiohttp",
            "microscheduler.otel",
            "microscheduler.ray",
        ):
            try:
                __import__(module)
            except ImportError as exc:
                print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "microscheduler.fastapi needs FastAPI: pip install 'microscheduler[fastapi]'",
        "microscheduler.aiohttp needs aiohttp: pip install 'microscheduler[aiohttp]'",
        "microscheduler.otel needs OpenTelemetry: pip install 'microscheduler[otel]'",
        "microscheduler.ray needs Ray: pip install 'microscheduler[ray]'",
    ]


def test_the_llm_module_imports_and_keeps_state_without_its_backends() -> None:
    """microscheduler.llm imports with llama_cpp, openai, gguf and numpy unimportable (each
    backend imports its package when used), and Completion round-trips a snapshot."""
    result = _run(
        """
        import sys

        for name in ("llama_cpp", "openai", "gguf", "numpy"):
            sys.modules[name] = None

        from microscheduler.llm import Completion

        state = Completion("prompt")
        state.append("hello", 7)
        copy = Completion("other")
        copy.restore(state.save())
        assert (copy.prompt, copy.text, copy.tokens, copy.token_ids) == ("prompt", "hello", 1, [7])
        assert "llama_cpp" not in sys.modules or sys.modules["llama_cpp"] is None
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
