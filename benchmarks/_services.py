"""The two services ``bench_service`` loads, each run in its own uvicorn process.

- ``microscheduler``: ``examples/fastapi_app.py`` as shipped — a single-processor executor;
  ``/chat`` is a UI task, ``/index`` a Background task checkpointing after every chunk.
- ``plain``: the same endpoints and the same simulated model with no scheduler: every
  model call takes one ``asyncio.Lock`` (FIFO), and ``/index`` runs its chunks in an
  ``asyncio`` task. This is what a service without a scheduler does to share one model.

Both count the model's calls (``GET /bench``): chunk embeddings started and finished (a
started chunk that never finished was aborted by a preemption: wasted model time) and
replies. Run one with ``python -m benchmarks._services --kind KIND --port PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parent.parent

#: WorkerConfig fields that the recommended service settings use; older versions of the
#: library lack them, and the benchmark then runs the defaults only.
RECOMMENDED_FIELDS = ("background_quiet_period", "min_background_slice")


def load_example(name: str) -> Any:
    """Import ``examples/<name>.py`` (the examples are scripts, not a package)."""
    module_name = f"_microscheduler_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass(slots=True)
class Calls:
    """What the model has done so far."""

    embed_started: int = 0
    embed_done: int = 0
    replies: int = 0


class CountingModel:
    """The example's simulated model (5 ms a reply, 10 ms a chunk), counting its calls."""

    def __init__(self) -> None:
        self.calls = Calls()
        self._model = load_example("fastapi_app").SimulatedModel()

    async def reply(self, message: str) -> str:
        """Answer a chat message."""
        answer: str = await self._model.reply(message)
        self.calls.replies += 1
        return answer

    async def embed(self, document: str, chunk: int) -> None:
        """Embed one chunk; a cancelled call counts as started, not done."""
        self.calls.embed_started += 1
        await self._model.embed(document, chunk)
        self.calls.embed_done += 1


class ChatRequest(BaseModel):
    """Body of ``POST /chat``."""

    message: str


class IndexRequest(BaseModel):
    """Body of ``POST /index``."""

    document: str
    chunks: int = Field(default=3, ge=1, le=10_000)


def plain_app(model: CountingModel) -> FastAPI:
    """The service without a scheduler: one ``asyncio.Lock`` around the model."""
    app = FastAPI()
    lock = asyncio.Lock()
    jobs: set[asyncio.Task[None]] = set()

    async def run_index(body: IndexRequest) -> None:
        for chunk in range(body.chunks):
            async with lock:
                await model.embed(body.document, chunk)

    @app.post("/chat")
    async def chat(body: ChatRequest) -> dict[str, str]:
        async with lock:
            return {"reply": await model.reply(body.message)}

    @app.post("/index", status_code=202)
    async def index(body: IndexRequest) -> dict[str, str]:
        job = asyncio.create_task(run_index(body))
        jobs.add(job)
        job.add_done_callback(jobs.discard)
        return {"status": "queued"}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {"jobs": len(jobs)}

    return app


def scheduler_app(model: CountingModel, options: dict[str, float]) -> FastAPI:
    """``examples/fastapi_app.py``'s service on one processor, with ``options`` applied."""
    from microscheduler import WorkerConfig

    config = WorkerConfig(ui_workers=1, background_workers=0, **options)  # type: ignore[arg-type]
    app: FastAPI = load_example("fastapi_app").create_app(config, model=model, drain_timeout=1.0)
    return app


def supported_options(options: dict[str, float]) -> dict[str, float] | None:
    """``options`` if the installed WorkerConfig has every field they name, else None."""
    from microscheduler import WorkerConfig

    fields = {field.name for field in dataclasses.fields(WorkerConfig)}
    return options if set(options) <= fields else None


def build(kind: str, options: dict[str, float]) -> FastAPI:
    """The service of ``kind`` (``plain`` or ``microscheduler``), with ``GET /bench``."""
    model = CountingModel()
    app = plain_app(model) if kind == "plain" else scheduler_app(model, options)

    @app.get("/bench")
    async def bench() -> dict[str, int]:
        return dataclasses.asdict(model.calls)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve one service on 127.0.0.1 until SIGTERM or SIGINT."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks._services")
    parser.add_argument("--kind", choices=["plain", "microscheduler"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--option", action="append", default=[], metavar="FIELD=SECONDS")
    args = parser.parse_args(argv)
    options = {k: float(v) for k, v in (item.split("=", 1) for item in args.option)}

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    app = build(args.kind, options)
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop=args.loop, log_level="warning")


if __name__ == "__main__":
    main()
