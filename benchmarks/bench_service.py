"""Benchmark 7 — a chat service under real HTTP load, with and without microscheduler.

Two services share one simulated model (5 ms a chat reply, 10 ms a chunk embedding):
``examples/fastapi_app.py`` (a single-processor executor: chat is UI work that preempts
the Background indexing, which checkpoints after every chunk) and the same endpoints
without a scheduler, every model call taking one ``asyncio.Lock`` (see ``_services.py``).
Each runs in its own uvicorn process on 127.0.0.1, loaded from this process:

- phases: ``idle`` (one closed-loop chat client, no indexing), then 1, 10 and 50
  closed-loop chat clients while six index jobs of 50 chunks are kept outstanding;
- load: ``wrk`` (one thread; ``-c`` = the clients) when installed, else an httpx client
  with one asyncio task per closed-loop client — both stop by themselves after
  ``--seconds`` per phase (and the httpx client after at most 200,000 requests);
- reported per phase: chat p50/p99 and requests/s, background chunks/s (model
  embeddings finished), aborted chunk calls (embeddings started and cut off by a
  preemption: wasted model time) and, where the library counts them, ``wasted_runs``.

The library runs twice: with the defaults, and with the recommended service setting
(``min_background_slice`` a little over one chunk; see benchmarks/README.md for why not a
quiet period). It is passed as a WorkerConfig keyword only when the installed WorkerConfig
has the field; on a version without it the recommended rows read n/a.

``python -m benchmarks.bench_service [--seconds S] [--loop asyncio|uvloop] [--json PATH]``;
part of ``python -m benchmarks`` (not of ``--quick``).

With the llm extra installed there is also a real-model table (``--model-table [--model
PATH.gguf]`` runs only that one; ``_model_load.py`` says what it measures): one llama.cpp
model shared by chat turns and background summaries, through microscheduler (with resume,
and restarting from the prompt), an ``asyncio.Lock`` per generation (arrival order) and
an ``asyncio.Lock`` per token.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ._harness import Row, percentile
from ._settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PHASES: tuple[tuple[str, int, bool], ...] = (
    ("idle", 1, False),
    ("c=1", 1, True),
    ("c=10", 10, True),
    ("c=50", 50, True),
)
JOBS, CHUNKS = 6, 50
RECOMMENDED = {"min_background_slice": 0.012}
VARIANTS: dict[str, tuple[str, dict[str, float]]] = {
    "plain asyncio.Lock": ("plain", {}),
    "microscheduler defaults": ("microscheduler", {}),
    "microscheduler recommended": ("microscheduler", RECOMMENDED),
}
MAX_REQUESTS = 200_000
WRK_SCRIPT = 'wrk.method = "POST"\nwrk.body = \'{"message": "hello"}\'\n'
WRK_SCRIPT += 'wrk.headers["Content-Type"] = "application/json"\n'


@dataclass(slots=True)
class Phase:
    """The figures of one phase of one service."""

    name: str
    clients: int
    p50_s: float = math.nan
    p99_s: float = math.nan
    requests_per_s: float = math.nan
    chunks_per_s: float = math.nan
    aborted_chunks: int = 0
    wasted_runs: int | None = None
    tool: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One service in its own uvicorn process (stopped by :meth:`stop`, always):
    ``python -m MODULE --port PORT ARGS...``, serving ``GET /bench``."""

    def __init__(self, module: str, args: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", module, "--port", str(self.port), *args]
        self.proc = subprocess.Popen(command, cwd=ROOT)

    async def wait_ready(self, client: httpx.AsyncClient, timeout: float = 30.0) -> None:
        """Return once ``GET /bench`` answers (at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self.proc.returncode}")
            try:
                if (await client.get(f"{self.url}/bench")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the service did not start within {timeout} s")

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down, the executor drains for 1 s), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def keep_jobs_outstanding(client: httpx.AsyncClient, url: str, stop: asyncio.Event) -> None:
    """Submit index jobs so that about JOBS x CHUNKS chunks are always waiting."""
    submitted = 0
    while not stop.is_set():
        done = (await client.get(f"{url}/bench")).json()["embed_done"]
        while submitted * CHUNKS - done < (JOBS - 1) * CHUNKS:
            body = {"document": f"doc-{submitted}", "chunks": CHUNKS}
            (await client.post(f"{url}/index", json=body)).raise_for_status()
            submitted += 1
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except TimeoutError:
            pass


def _wrk_seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


async def load_wrk(
    wrk: str, url: str, clients: int, seconds: float, timeout: str | None = None
) -> dict[str, Any]:
    """Closed-loop POST /chat from ``clients`` wrk connections for ``seconds`` (a request
    unanswered after ``timeout``, wrk's default 2s, counts as an error)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = [wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency"]
    command += [] if timeout is None else ["--timeout", timeout]
    command += ["-s", script.name, f"{url}/chat"]
    proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    Path(script.name).unlink()
    return parse_wrk(out.decode())


def parse_wrk(text: str) -> dict[str, Any]:
    """p50, p99 (seconds), requests/s and non-2xx responses from ``wrk --latency`` output."""
    # wrk pads a latency in whole seconds with a trailing space ("1.21s ").
    found = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", text, flags=re.M))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        # No distribution at all when no request was answered within the run.
        "p50_s": _wrk_seconds(found["50"]) if "50" in found else math.nan,
        "p99_s": _wrk_seconds(found["99"]) if "99" in found else math.nan,
        "requests_per_s": float(rate.group(1)) if rate else math.nan,
        "errors": int(errors.group(1)) if errors else 0,
    }


async def load_httpx(url: str, clients: int, seconds: float) -> dict[str, Any]:
    """The same load from httpx: ``clients`` tasks, each awaiting its reply before the next."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def user(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
            start = time.perf_counter()
            response = await client.post(f"{url}/chat", json={"message": "hello"})
            latencies.append(time.perf_counter() - start)
            errors += response.status_code != 200

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        await asyncio.gather(*(user(client) for _ in range(clients)))
    return {
        "p50_s": percentile(latencies, 50),
        "p99_s": percentile(latencies, 99),
        "requests_per_s": len(latencies) / (time.perf_counter() - started),
        "errors": errors,
    }


async def run_service(
    kind: str, options: dict[str, float], loop: str, seconds: float
) -> list[Phase]:
    """Start one service, run every phase against it, stop it."""
    wrk = shutil.which("wrk")
    opts = [f"--option={k}={v}" for k, v in options.items()]
    server = Server("benchmarks._services", ["--kind", kind, "--loop", loop, *opts])
    phases = []
    try:
        async with httpx.AsyncClient(timeout=30.0) as client:
            await server.wait_ready(client)
            stop = asyncio.Event()
            feeder: asyncio.Task[None] | None = None
            for name, clients, background in PHASES:
                if background and feeder is None:
                    feeder = asyncio.create_task(keep_jobs_outstanding(client, server.url, stop))
                before = (await client.get(f"{server.url}/bench")).json()
                wasted_before = (await client.get(f"{server.url}/stats")).json()
                t0 = time.perf_counter()
                if wrk is not None:
                    found = await load_wrk(wrk, server.url, clients, seconds)
                else:
                    found = await load_httpx(server.url, clients, seconds)
                elapsed = time.perf_counter() - t0
                after = (await client.get(f"{server.url}/bench")).json()
                wasted_after = (await client.get(f"{server.url}/stats")).json()
                in_flight = 1 if after["embed_started"] > after["embed_done"] else 0
                aborted = (after["embed_started"] - after["embed_done"] - in_flight) - (
                    before["embed_started"] - before["embed_done"]
                )
                wasted = None
                if "wasted_runs" in wasted_after:
                    wasted = wasted_after["wasted_runs"] - wasted_before["wasted_runs"]
                phases.append(
                    Phase(
                        name=name,
                        clients=clients,
                        p50_s=found["p50_s"],
                        p99_s=found["p99_s"],
                        requests_per_s=found["requests_per_s"],
                        chunks_per_s=(after["embed_done"] - before["embed_done"]) / elapsed,
                        aborted_chunks=max(0, aborted),
                        wasted_runs=wasted,
                        tool="wrk" if wrk is not None else "httpx",
                        seconds=elapsed,
                        extra={"errors": found["errors"]},
                    )
                )
            stop.set()
            if feeder is not None:
                await feeder
    finally:
        server.stop()
    return phases


async def run_all(loop: str, seconds: float) -> dict[str, list[Phase] | None]:
    """Every variant, one after the other (None: the library lacks its settings)."""
    from ._services import supported_options

    results: dict[str, list[Phase] | None] = {}
    for variant, (kind, options) in VARIANTS.items():
        if kind == "microscheduler" and supported_options(options) is None:
            results[variant] = None
            continue
        results[variant] = await run_service(kind, options, loop, seconds)
    return results


def format_results(results: dict[str, list[Phase] | None]) -> str:
    """A Markdown table: one line per variant and phase."""
    lines = [
        "| service | phase | chat p50 | chat p99 | chat req/s | chunks/s | aborted chunks "
        "| wasted runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, phases in results.items():
        if phases is None:
            lines.append(f"| {variant} | n/a: this WorkerConfig lacks the settings | | | | | | |")
            continue
        for p in phases:
            wasted = "-" if p.wasted_runs is None else f"{p.wasted_runs:,}"
            lines.append(
                f"| {variant} | {p.name} | {p.p50_s * 1e3:.1f} ms | {p.p99_s * 1e3:.1f} ms "
                f"| {p.requests_per_s:,.0f} | {p.chunks_per_s:,.1f} | {p.aborted_chunks:,} "
                f"| {wasted} |"
            )
    return "\n".join(lines)


def rows(results: dict[str, list[Phase] | None], loop: str) -> list[Row]:
    """Rows for ``python -m benchmarks``: library variant vs the plain service, per phase."""
    plain = {p.name: p for p in results.get("plain asyncio.Lock") or []}
    out = []
    for variant, phases in results.items():
        if variant.startswith("plain") or phases is None:
            continue
        settings = variant.removeprefix("microscheduler ")
        for p in phases:
            base = plain.get(p.name)
            for metric, unit, mine, theirs in (
                ("service chat p50", "s latency", p.p50_s, base.p50_s if base else None),
                ("service chat p99", "s latency", p.p99_s, base.p99_s if base else None),
                (
                    "service chunks/s",
                    "chunks/s",
                    p.chunks_per_s,
                    base.chunks_per_s if base else None,
                ),
            ):
                out.append(
                    Row(
                        benchmark=metric,
                        size=f"{settings} {p.name}",
                        loop=loop,
                        unit=unit,
                        library=mine,
                        baseline=theirs,
                        baseline_name="asyncio.Lock service",
                        ratio=mine / theirs if theirs else None,
                        target=None,
                        detail={"phase": asdict(p), "baseline": asdict(base) if base else None},
                    )
                )
    return out


def measure(settings: Settings, loop: str) -> list[Row]:
    """The service benchmark inside ``python -m benchmarks`` (skipped in quick mode; the
    real-model table only where the llm extra is installed)."""
    if settings.quick:
        return []
    out = rows(asyncio.run(run_all(loop, settings.service_seconds)), loop)
    if importlib.util.find_spec("llama_cpp") is not None:
        from ._model_load import model_rows
        from ._model_load import run_all as run_model_services

        found = asyncio.run(run_model_services(None, settings.service_seconds))
        out += model_rows(found, loop)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every variant, print the table, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_service")
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase (default 10)")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--json", type=Path, default=Path("bench-results-service.json"))
    parser.add_argument(
        "--model-table",
        action="store_true",
        help="only the real-model table (needs the llm extra): one llama.cpp model shared by "
        "chat and background summaries, four ways",
    )
    parser.add_argument("--model", type=Path, help="with --model-table: this GGUF file")
    args = parser.parse_args(argv)
    print(
        f"load: {'wrk' if shutil.which('wrk') else 'httpx'}, {args.seconds:g} s per phase, "
        f"uvicorn on {args.loop}",
        file=sys.stderr,
    )
    if args.model_table:
        from ._model_load import format_table
        from ._model_load import run_all as run_model_services

        found = asyncio.run(run_model_services(args.model, args.seconds))
        print(format_table(found))
        table = {k: [asdict(p) for p in v] for k, v in found.items()}
        args.json.write_text(json.dumps(table, indent=1) + "\n")
        return 0
    results = asyncio.run(run_all(args.loop, args.seconds))
    print(format_results(results))
    data = {k: None if v is None else [asdict(p) for p in v] for k, v in results.items()}
    args.json.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
