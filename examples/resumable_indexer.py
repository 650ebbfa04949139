"""An indexer that survives restarts: kill it, run it again, it continues.

Run ``python examples/resumable_indexer.py``, stop it with Ctrl-C or ``kill -9`` while it
works, and run it again: it goes on from the last chunk it saved, not from the start.

The indexing is one Background task with a key. Its checkpoints go to an SQLite file
(``resumable_indexer.db`` in the current directory; ``--db`` to choose): every
``await interrupt.save_state(state)`` returns once the snapshot is committed to disk, and a
new process that submits the same key restores it before the first run. When the task
completes, its snapshot is deleted, so the next run indexes everything afresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable

from microscheduler import InterruptContext, SQLiteSnapshotStore, Task, TaskExecutor, WorkerConfig

DOCUMENTS = ["guide", "notes", "minutes", "report", "letters"]
CHUNKS = 20  # per document


class Progress:
    """Where the indexing is: documents finished, chunks of the current one done."""

    def __init__(self) -> None:
        self.documents = 0
        self.chunks = 0

    def save(self) -> bytes:
        return json.dumps([self.documents, self.chunks]).encode()

    def restore(self, data: bytes) -> None:
        self.documents, self.chunks = json.loads(data)


Compute = Callable[[object, Progress, InterruptContext], Awaitable[str]]


def indexer(delay: float) -> Compute:
    """The compute: index every chunk of every document, checkpointing after each."""

    async def index_corpus(_resource: object, state: Progress, interrupt: InterruptContext) -> str:
        if state.documents or state.chunks:
            print(f"resuming at {DOCUMENTS[state.documents]}, chunk {state.chunks + 1}", flush=True)
        while state.documents < len(DOCUMENTS):
            await asyncio.sleep(delay)  # embed one chunk with your model here
            state.chunks += 1
            if state.chunks == CHUNKS:
                state.documents, state.chunks = state.documents + 1, 0
            await interrupt.save_state(state)  # on disk when this returns
            print(f"saved {state.documents} documents + {state.chunks} chunks", flush=True)
        return f"indexed {len(DOCUMENTS)} documents"

    return index_corpus


async def main(db: str = "resumable_indexer.db", delay: float = 0.1) -> None:
    # Checkpoints outlive the process. The store is yours: executors never close it.
    async with SQLiteSnapshotStore(db) as store:
        config = WorkerConfig(snapshot_store=store)
        async with TaskExecutor.from_config(config) as executor:
            task = Task(
                name="index", key="index-corpus", compute=indexer(delay), initial_state=Progress()
            )
            result = await executor.execute(task)  # a rerun resumes from the last save_state
            print(result)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--db", default="resumable_indexer.db", help="the snapshot file")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per chunk")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.db, args.delay))
    except KeyboardInterrupt:
        print("stopped; run me again to continue")
