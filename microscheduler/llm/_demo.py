"""``python -m microscheduler demo --model PATH.gguf``: the demo on a real llama.cpp model.

Background summaries are generated token by token while chat turns arrive at random
moments. Each chat turn preempts the summary under way between two tokens; the summary
then continues from the tokens it had. The run ends with chat latency, the background's
tokens per second and how many tokens were generated twice (none: every interruption
checkpoints).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import time
from typing import Any, TextIO

from microscheduler import InterruptContext, Priority, Task, TaskExecutor, WorkerConfig

from ._completion import Completion
from ._generate import complete
from ._llama import chat_prompt

__all__ = ("run_model_demo",)

SUMMARY_TOKENS = 400
CHAT_TOKENS = 16


class _Tracked(Completion):
    """A Completion that counts tokens appended twice (after a restore to fewer)."""

    def __init__(self, prompt: str, counts: dict[str, int]) -> None:
        super().__init__(prompt)
        self.counts = counts
        self.high = 0

    def append(self, piece: str | bytes, token_id: int | None = None) -> None:
        super().append(piece, token_id)
        self.counts["generated"] += 1
        if self.tokens <= self.high:
            self.counts["twice"] += 1
        self.high = max(self.high, self.tokens)


class ModelDemo:
    """Summaries in the Background lane and chat turns in the UI lane, on one model."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        from llama_cpp import Llama

        self.args = args
        self.out = out
        self.rng = random.Random(args.seed)
        self.start = time.perf_counter()
        # Half the cores: llama.cpp's threads spin while they wait, and on a busy machine a
        # thread per core makes every token many times slower.
        threads = max(1, (os.cpu_count() or 2) // 2)
        self.llama: Any = Llama(
            model_path=args.model,
            n_ctx=2048,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self.counts = {"generated": 0, "twice": 0}
        self.chat_ms: list[float] = []
        self.finished = 0

    def say(self, lane: str, message: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:6.2f}s] {lane:<10} {message}", file=self.out, flush=True)

    async def summarise(self, _resource: object, state: Completion, ctx: InterruptContext) -> str:
        number = state.prompt.split()[2]
        if ctx.attempt > 1:
            self.say(
                "Background",
                f"summary {number} resumes at token {state.tokens} (run {ctx.attempt})",
            )
        text = await complete(ctx, self.llama, state, max_tokens=SUMMARY_TOKENS, temperature=0)
        if ctx.reason == "preempted":
            self.say(
                "Background", f"summary {number} preempted after {state.tokens} tokens; all kept"
            )
        return text

    async def chat(self, executor: TaskExecutor, number: int) -> None:
        submitted = time.perf_counter()
        prompt = chat_prompt(self.llama, f"question {number}")

        async def compute(_resource: object, state: Completion, ctx: InterruptContext) -> str:
            return await complete(ctx, self.llama, state, max_tokens=CHAT_TOKENS, temperature=0)

        busy = " -> preempts the summary" if executor.statistics().running else ""
        self.say("UI", f"chat turn #{number} arrives{busy}")
        task = Task(
            name=f"chat-{number}",
            compute=compute,
            priority=Priority.UI,
            initial_state=lambda: Completion(prompt),
        )
        reply = await executor.execute(task)
        elapsed_ms = (time.perf_counter() - submitted) * 1000
        self.chat_ms.append(elapsed_ms)
        self.say("UI", f"chat turn #{number} answered in {elapsed_ms:.0f} ms: {reply[:24]!r}...")

    async def summaries(self, executor: TaskExecutor) -> None:
        """Generate summaries one after the other, for as long as the demo runs."""
        for number in range(1, 1_000_000):
            prompt = f"Summarise document {number}:\n"
            await executor.execute(
                Task(
                    name=f"summary-{number}",
                    compute=self.summarise,
                    initial_state=functools.partial(_Tracked, prompt, self.counts),
                )
            )
            self.finished += 1
            self.say("Background", f"summary {number} finished ({SUMMARY_TOKENS} tokens)")

    async def run(self) -> None:
        deadline = self.start + self.args.duration
        async with TaskExecutor.from_config(WorkerConfig()) as executor:
            self.say("executor", f"started (single-processor) with model {self.args.model}")
            background = asyncio.create_task(self.summaries(executor))
            chats = []
            number = 0
            while (delay := self.rng.uniform(0.05, 0.3)) + time.perf_counter() < deadline:
                await asyncio.sleep(delay)
                number += 1
                chats.append(asyncio.create_task(self.chat(executor, number)))
            await asyncio.gather(*chats)
            background.cancel()  # the summary under way when --duration is up
            await asyncio.gather(background, return_exceptions=True)
            stats = executor.statistics()
        self.print_summary(stats.preempted, time.perf_counter() - self.start)

    def print_summary(self, preempted: int, seconds: float) -> None:
        print("\nSummary", file=self.out)
        if self.chat_ms:
            ordered = sorted(self.chat_ms)
            print(
                f"  chat turns         {len(ordered)}; answered p50 "
                f"{ordered[len(ordered) // 2]:.0f} ms, slowest {ordered[-1]:.0f} ms",
                file=self.out,
            )
        print(f"  preemptions        {preempted}", file=self.out)
        print(
            f"  summaries          {self.finished} finished; "
            f"{self.counts['generated'] / seconds:.0f} background tokens/s",
            file=self.out,
        )
        print(
            f"  generated twice    {self.counts['twice']} tokens (each interruption checkpoints)",
            file=self.out,
        )


def run_model_demo(args: argparse.Namespace, out: TextIO) -> None:
    """Run the demo on the GGUF model at ``args.model``."""
    asyncio.run(ModelDemo(args, out).run())
