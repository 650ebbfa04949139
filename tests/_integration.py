"""Helpers shared by the FastAPI and aiohttp integration tests."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str) -> ModuleType:
    module_name = f"_microscheduler_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def doc_snippet(name: str) -> str:
    text = (ROOT / "docs" / "integrations.md").read_text()
    match = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```python\n(.*?)```", text, re.S)
    assert match is not None, f"no snippet {name!r} in docs/integrations.md"
    return match.group(1)


class GatedModel:
    """A model whose embedding of one chunk blocks until the test releases it."""

    def __init__(self, *, gated_document: str, gated_chunk: int) -> None:
        self.gated = (gated_document, gated_chunk)
        self.embedded: list[tuple[str, int]] = []
        self.gate_entries = 0
        self.release = asyncio.Event()
        self._entered = asyncio.Condition()

    async def reply(self, message: str) -> str:
        return f"re: {message}"

    async def embed(self, document: str, chunk: int) -> None:
        self.embedded.append((document, chunk))
        if (document, chunk) == self.gated:
            async with self._entered:
                self.gate_entries += 1
                self._entered.notify_all()
            await self.release.wait()

    async def wait_gate_entered(self, times: int) -> None:
        async with self._entered:
            await self._entered.wait_for(lambda: self.gate_entries >= times)
