"""Helpers for the real-model tests: the llm extra's check, the tiny model, llama-server.

The tests in ``test_llm*.py`` need the ``llm`` extra (llama-cpp-python, gguf, openai) and,
for the HTTP path, llama.cpp's ``llama-server`` binary. Without them they skip and say
why; ``.ci/run`` installs both and sets ``MICROSCHEDULER_REQUIRE_LLM=1``, which turns every
such skip into a failure, so CI always runs them.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

REQUIRED = os.environ.get("MICROSCHEDULER_REQUIRE_LLM") == "1"
CACHE = Path(os.environ.get("MICROSCHEDULER_CI_CACHE", "~/.cache/microscheduler-ci")).expanduser()


def unavailable(reason: str) -> None:
    """Skip the test or module for ``reason``; fail instead where CI requires the llm tests."""
    if REQUIRED:
        pytest.fail(f"{reason} (MICROSCHEDULER_REQUIRE_LLM=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_llm_extra() -> None:
    """Skip (or fail, in CI) unless the llm extra is installed."""
    missing = [m for m in ("llama_cpp", "gguf", "openai") if importlib.util.find_spec(m) is None]
    if missing:
        unavailable(
            f"the llm extra is not installed (missing {', '.join(missing)}): "
            f"pip install -e '.[llm]' (.ci/run does, in its llm step)"
        )


def find_llama_server() -> str | None:
    """``$LLAMA_SERVER``, else the binary ``.ci/build-llama-server`` cached, else PATH's."""
    explicit = os.environ.get("LLAMA_SERVER")
    if explicit:
        return explicit
    cached = sorted(glob.glob(str(CACHE / "llama-server-*" / "llama-server")))
    if cached:
        return cached[-1]
    return shutil.which("llama-server")


def open_llama(path: Path, **options: object) -> object:
    """The tiny model opened as the tests use it: one thread, batches of one token."""
    from llama_cpp import Llama

    settings: dict[str, object] = {"n_ctx": 2048, "n_batch": 1, "verbose": False}
    # One thread: llama.cpp's threads spin while they wait, which on a shared machine makes
    # every token (and every prompt batch: n_threads_batch) many times slower.
    settings |= {"n_threads": 1, "n_threads_batch": 1}
    return Llama(model_path=str(path), **{**settings, **options})


class LlamaServer:
    """llama.cpp's ``llama-server`` on 127.0.0.1 serving one model with one slot."""

    def __init__(self, binary: str, model: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        command = [binary, "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
        # One slot: a generation the server did not stop would hold it, and the next
        # request would queue behind it. --metrics: the tests read tokens_predicted_total.
        command += ["--parallel", "1", "--ctx-size", "4096", "--metrics"]
        command += ["--threads", "1", "--threads-batch", "1"]
        command += ["--alias", "tiny", "--no-webui"]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once ``GET /health`` answers 200 (a hang guard, not an ordering)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise RuntimeError(f"llama-server exited with {self.proc.returncode}:\n{err}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"llama-server did not answer within {timeout} s")

    def metric(self, name: str) -> float:
        """One value of the server's Prometheus ``/metrics``."""
        import httpx

        for line in httpx.get(f"{self.url}/metrics", timeout=5.0).text.splitlines():
            if line.startswith(f"llamacpp:{name} "):
                return float(line.split()[1])
        raise AssertionError(f"llama-server reports no metric {name}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
