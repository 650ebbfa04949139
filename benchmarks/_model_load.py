"""bench_service's real-model table: chat under load on one llama.cpp model, four ways.

Each service of ``_model_services.py`` runs in its own uvicorn process with the same model
(by default a random-weight llama model written here, 256 wide and 4 blocks deep: about
a millisecond a token on one core; ``--model PATH.gguf`` for a real one). Phases:

- ``idle``: one closed-loop chat client, nothing in the background;
- ``c=1`` and ``c=10``: 1 and 10 closed-loop chat clients (``wrk`` connections, or httpx
  clients without wrk) while two summaries of 300 tokens are kept outstanding.

Reported per phase: chat time to first token (measured in the service, from the request's
arrival to the model's first token) and to the full answer (measured by the load tool),
p50/p99; background summary tokens per second (tokens kept: generated minus generated
twice); and summary tokens generated twice (at a position their summary had already
reached, after a preemption).
"""

from __future__ import annotations

import asyncio
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from ._harness import Row, percentile

PHASES: tuple[tuple[str, int, bool], ...] = (
    ("idle", 1, False),
    ("c=1", 1, True),
    ("c=10", 10, True),
)
SUMMARY_TOKENS, OUTSTANDING = 300, 2
VARIANTS = {
    "microscheduler (resume)": "microscheduler",
    "microscheduler, min_background_slice=50ms": "slice",
    "microscheduler, restart from prompt": "restart",
    "asyncio.Lock per generation (arrival order)": "lock",
    "asyncio.Lock per token": "token-lock",
}


@dataclass(slots=True)
class ModelPhase:
    """The figures of one phase of one service."""

    name: str
    clients: int
    first_token_p50_s: float = math.nan
    first_token_p99_s: float = math.nan
    answer_p50_s: float = math.nan
    answer_p99_s: float = math.nan
    chats_per_s: float = math.nan
    background_tokens_per_s: float = math.nan
    generated_twice: int = 0
    errors: int = 0
    seconds: float = 0.0


def default_model(folder: Path) -> Path:
    """The benchmark's random-weight model, written to ``folder``."""
    from microscheduler.llm import write_tiny_model

    return write_tiny_model(folder / "bench-256x4.gguf", embedding_length=256, block_count=4)


def kept(bench: dict[str, Any]) -> int:
    """Summary tokens that count: generated, less those generated twice."""
    return int(bench["summary_tokens"]) - int(bench["regenerated"])


async def keep_summaries(client: httpx.AsyncClient, url: str, stop: asyncio.Event) -> None:
    """Submit summaries so that about OUTSTANDING of them always wait or run."""
    submitted = 0
    while not stop.is_set():
        done = kept((await client.get(f"{url}/bench")).json())
        while (submitted - OUTSTANDING) * SUMMARY_TOKENS < done:
            body = {"document": f"document {submitted:04d}", "max_tokens": SUMMARY_TOKENS}
            (await client.post(f"{url}/summarise", json=body)).raise_for_status()
            submitted += 1
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except TimeoutError:
            pass


async def run_service(kind: str, model: Path, seconds: float) -> list[ModelPhase]:
    """Start one service, run every phase against it, stop it."""
    from .bench_service import Server, load_httpx, load_wrk

    wrk = shutil.which("wrk")
    service = Server("benchmarks._model_services", ["--kind", kind, "--model", str(model)])
    phases = []
    try:
        async with httpx.AsyncClient(timeout=120.0) as client:
            await service.wait_ready(client, timeout=60.0)
            await client.post(f"{service.url}/chat", json={"message": "warm up"})
            stop = asyncio.Event()
            feeder: asyncio.Task[None] | None = None
            for name, clients, background in PHASES:
                if background and feeder is None:
                    feeder = asyncio.create_task(keep_summaries(client, service.url, stop))
                before = (await client.get(f"{service.url}/bench")).json()
                t0 = time.perf_counter()
                if wrk is not None:
                    found = await load_wrk(wrk, service.url, clients, seconds, timeout="60s")
                else:
                    found = await load_httpx(service.url, clients, seconds)
                elapsed = time.perf_counter() - t0
                after = (await client.get(f"{service.url}/bench")).json()
                firsts = after["first_token_s"][len(before["first_token_s"]) :]
                phases.append(
                    ModelPhase(
                        name=name,
                        clients=clients,
                        first_token_p50_s=percentile(firsts, 50) if firsts else math.nan,
                        first_token_p99_s=percentile(firsts, 99) if firsts else math.nan,
                        answer_p50_s=found["p50_s"],
                        answer_p99_s=found["p99_s"],
                        chats_per_s=found["requests_per_s"],
                        background_tokens_per_s=(kept(after) - kept(before)) / elapsed,
                        generated_twice=after["regenerated"] - before["regenerated"],
                        errors=found["errors"],
                        seconds=elapsed,
                    )
                )
            stop.set()
            if feeder is not None:
                await feeder
    finally:
        service.stop()
    return phases


async def run_all(model: Path | None, seconds: float) -> dict[str, list[ModelPhase]]:
    """Every variant, one after the other, on ``model`` (default: the written one)."""
    with tempfile.TemporaryDirectory() as folder:
        path = model if model is not None else default_model(Path(folder))
        return {name: await run_service(kind, path, seconds) for name, kind in VARIANTS.items()}


def format_table(results: dict[str, list[ModelPhase]]) -> str:
    """A Markdown table: one line per variant and phase."""

    def ms(value: float) -> str:
        return "-" if math.isnan(value) else f"{value * 1e3:,.0f} ms"

    lines = [
        "| service | phase | first token p50 | p99 | answer p50 | p99 | chats/s "
        "| background tokens/s | generated twice |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, phases in results.items():
        for p in phases:
            if not p.chats_per_s:  # no chat answered within the phase: wrk reports zeros
                p.answer_p50_s = p.answer_p99_s = math.nan
            lines.append(
                f"| {variant} | {p.name} | {ms(p.first_token_p50_s)} | {ms(p.first_token_p99_s)} "
                f"| {ms(p.answer_p50_s)} | {ms(p.answer_p99_s)} | {p.chats_per_s:,.1f} "
                f"| {p.background_tokens_per_s:,.0f} | {p.generated_twice:,} |"
            )
    return "\n".join(lines)


def model_rows(results: dict[str, list[ModelPhase]], loop: str) -> list[Row]:
    """Rows for ``python -m benchmarks``: each busy phase of each service against the
    idle phase of the scheduler's service (chat) and against its own resume (background)."""
    ours = {p.name: p for p in results["microscheduler (resume)"]}
    idle = ours["idle"]
    out = []
    for variant, phases in results.items():
        for p in phases:
            if p.name == "idle":
                continue
            for metric, mine, theirs, target in (
                ("model chat first token p50", p.first_token_p50_s, idle.first_token_p50_s, 1.5),
                ("model chat answer p50", p.answer_p50_s, idle.answer_p50_s, 1.5),
            ):
                out.append(
                    Row(
                        benchmark=metric,
                        size=f"{variant} {p.name}",
                        loop=loop,
                        unit="s latency",
                        library=mine,
                        baseline=theirs,
                        baseline_name="idle microscheduler service",
                        ratio=mine / theirs if theirs else None,
                        target=target if variant == "microscheduler (resume)" else None,
                        detail={"phase": asdict(p)},
                    )
                )
    return out
