"""The services ``bench_service --model`` loads: one real llama.cpp model, four ways to share it.

Each runs in its own uvicorn process (``python -m benchmarks._model_services --kind KIND
--port PORT --model PATH``), generating chat replies (``POST /chat``, 32 tokens) and
background summaries (``POST /summarise``, ``max_tokens`` tokens) with the same model:

- ``microscheduler``: ``examples/fastapi_app.py`` as shipped with ``llm=`` the model: chat
  turns are UI tasks that preempt the summary under way between two tokens; a preempted
  summary resumes from its checkpointed tokens.
- ``slice``: the same, with ``min_background_slice=0.05``: a resumed summary runs at least
  50 ms before a chat turn preempts it again.
- ``restart``: the same scheduling, but a preempted summary starts again from its prompt
  (its state forgets the checkpoint): what a service without resumable state does.
- ``lock``: no scheduler; every generation holds one ``asyncio.Lock`` for its whole length,
  so requests run in arrival order (the lock is FIFO).
- ``token-lock``: no scheduler; the lock is taken for each token, so a chat turn gets the
  model between two tokens of a summary (and the model's prefix cache is lost at each
  switch).

The model counts what it does (``GET /bench``): tokens generated for chat and for
summaries, summary tokens generated a second time (at a position that summary had already
reached) and the chat turns' time from the request's arrival to their first token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from ._services import load_example

CHAT_TOKENS = 32
KINDS = ("microscheduler", "slice", "restart", "lock", "token-lock")
#: The ``slice`` service: the example with a minimum Background slice (seconds), so that a
#: resumed summary re-reads its context and makes a few tokens before the next chat turn.
SLICE = 0.05


@dataclass(slots=True)
class Served:
    """The request a generation serves: a chat turn (with its arrival time until its first
    token is counted) or a summary."""

    chat: bool = False
    arrival: float = 0.0


#: Set by the middleware; computes and the model's worker threads see it (contexts are copied).
_REQUEST: contextvars.ContextVar[Served] = contextvars.ContextVar("bench_request")


@dataclass(slots=True)
class Counts:
    """What the model has done."""

    chat_tokens: int = 0
    summary_tokens: int = 0
    regenerated: int = 0
    first_token_s: list[float] = field(default_factory=list)


def counting_llama(path: str, counts: Counts) -> Any:
    """A ``llama_cpp.Llama`` (one thread) whose ``generate()`` counts what it yields."""
    from llama_cpp import Llama

    reached: dict[bytes, int] = {}  # a summary's prompt -> furthest position

    class CountingLlama(Llama):  # type: ignore[misc]
        def generate(self, tokens: Sequence[int], **options: Any) -> Generator[int, Any, None]:
            served = _REQUEST.get(Served())
            # A summary is known by its prompt ("Summarise <document>:\n"), which the
            # tokens of every one of its generate() calls begin with.
            key = bytes(self.detokenize(list(tokens[:64]))).split(b":\n")[0]
            position = len(tokens)
            for token in super().generate(tokens, **options):
                if served.chat:
                    if served.arrival:
                        counts.first_token_s.append(time.perf_counter() - served.arrival)
                        served.arrival = 0.0
                    counts.chat_tokens += 1
                else:
                    counts.summary_tokens += 1
                    position += 1
                    if position <= reached.get(key, 0):
                        counts.regenerated += 1
                    reached[key] = max(reached.get(key, 0), position)
                yield token

    threads = {"n_threads": 1, "n_threads_batch": 1}
    return CountingLlama(model_path=path, n_ctx=4096, verbose=False, **threads)


class ChatRequest(BaseModel):
    """Body of ``POST /chat``."""

    message: str


class SummaryRequest(BaseModel):
    """Body of ``POST /summarise``."""

    document: str
    max_tokens: int = Field(default=200, ge=1, le=2_000)


def scheduler_app(llama: Any, counts: Counts, *, resume: bool, slice_s: float = 0.0) -> FastAPI:
    """The example's service (``resume``) or its from-the-prompt twin."""
    from microscheduler import WorkerConfig
    from microscheduler.llm import Completion

    example = load_example("fastapi_app")
    if resume:
        config = WorkerConfig(min_background_slice=slice_s)
        app: FastAPI = example.create_app(config, llm=llama, drain_timeout=1.0)
        return app

    class FromPrompt(Completion):
        def restore(self, data: bytes) -> None:
            Completion.__init__(self, self.prompt)

    # The example's tasks now make states that restart from the prompt (chat turns are
    # never preempted, so only the summaries change). This process serves this one app.
    example.Completion = FromPrompt
    return cast(FastAPI, example.create_app(WorkerConfig(), llm=llama, drain_timeout=1.0))


def lock_app(llama: Any, *, per_token: bool) -> FastAPI:
    """The service without a scheduler: one ``asyncio.Lock`` per generation or per token."""
    from microscheduler.llm import chat_prompt

    app = FastAPI()
    lock = asyncio.Lock()
    jobs: set[asyncio.Task[str]] = set()

    async def generate(prompt: str, max_tokens: int) -> str:
        tokens = llama.tokenize(prompt.encode(), add_bos=True, special=True)
        out: list[int] = []

        def step() -> int:
            token: int = next(llama.generate([*tokens, *out], temp=0))
            return token

        async def run() -> None:
            while len(out) < max_tokens:
                if per_token:
                    async with lock:
                        out.append(await asyncio.to_thread(step))
                else:
                    out.append(await asyncio.to_thread(step))

        if per_token:
            await run()
        else:
            async with lock:
                await run()
        return str(llama.detokenize(out).decode("utf-8", "replace"))

    @app.post("/chat")
    async def chat(body: ChatRequest) -> dict[str, str]:
        return {"reply": await generate(chat_prompt(llama, body.message), CHAT_TOKENS)}

    @app.post("/summarise", status_code=202)
    async def summarise(body: SummaryRequest) -> dict[str, str]:
        job = asyncio.create_task(generate(f"Summarise {body.document}:\n", body.max_tokens))
        jobs.add(job)
        job.add_done_callback(jobs.discard)
        return {"status": "queued"}

    return app


def build(kind: str, model: str) -> FastAPI:
    """The service of ``kind``, with ``GET /bench`` and the request-marking middleware."""
    counts = Counts()
    llama = counting_llama(model, counts)
    if kind in ("microscheduler", "slice", "restart"):
        slice_s = SLICE if kind == "slice" else 0.0
        app = scheduler_app(llama, counts, resume=kind != "restart", slice_s=slice_s)
    else:
        app = lock_app(llama, per_token=kind == "token-lock")

    @app.middleware("http")
    async def mark(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path == "/chat":
            _REQUEST.set(Served(chat=True, arrival=time.perf_counter()))
        return await call_next(request)

    @app.get("/bench")
    async def bench() -> dict[str, Any]:
        return asdict(counts)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve one service on 127.0.0.1 until SIGTERM or SIGINT."""
    import structlog
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks._model_services")
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True, help="the GGUF file")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    app = build(args.kind, args.model)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
