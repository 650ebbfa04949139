"""A child process for the llm crash test: a keyed generation checkpointing to SQLite.

``python tests/_llm_crash_child.py MODEL DB MAX_TOKENS`` runs a single-processor executor
whose snapshot store is ``SQLiteSnapshotStore(DB)`` and executes one keyed Background task
generating MAX_TOKENS tokens greedily from MODEL with ``complete(checkpoint_every=16)``.
It prints, each line flushed at once:

- ``resumed <tokens> attempt <n>`` when a run starts (``tokens``: what its state holds);
- ``token <k>`` when the k-th token is appended (every checkpoint before it is durable:
  ``complete()`` awaits each save before it asks for the next token);
- ``result <text>`` when the task completed.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import structlog

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from _llm import open_llama

from microscheduler import InterruptContext, SQLiteSnapshotStore, Task, TaskExecutor, WorkerConfig
from microscheduler.llm import Completion, complete


class ReportingCompletion(Completion):
    """A Completion that prints every token it is given."""

    def append(self, piece: str | bytes, token_id: int | None = None) -> None:
        super().append(piece, token_id)
        print(f"token {self.tokens}", flush=True)


async def main(model_path: str, db: str, max_tokens: int) -> None:
    from pathlib import Path

    llama = open_llama(Path(model_path))

    async def generate(_resource: object, state: Completion, interrupt: InterruptContext) -> str:
        print(f"resumed {state.tokens} attempt {interrupt.attempt}", flush=True)
        return await complete(interrupt, llama, state, max_tokens=max_tokens, temperature=0)

    config = WorkerConfig(snapshot_store=SQLiteSnapshotStore(db))
    async with TaskExecutor.from_config(config) as executor:
        task = Task(
            name="summary",
            key="summary-1",
            compute=generate,
            initial_state=lambda: ReportingCompletion("Summarise the meeting notes:"),
        )
        print(f"result {await executor.execute(task)}", flush=True)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
