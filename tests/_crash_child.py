"""A child process for the crash test: an executor resuming a keyed task from SQLite.

``python tests/_crash_child.py DB KEY TOTAL [HOLD_AFTER]`` runs a single-processor executor
whose snapshot store is ``SQLiteSnapshotStore(DB)`` and executes one Background task with
key KEY that counts to TOTAL, summing the squares of its steps, with a checkpoint after
every step. It prints, each line flushed at once:

- ``resumed <done> attempt <n>`` when a run starts (``done``: the steps its state holds);
- ``step <k>`` when step k starts;
- ``saved <k>`` once ``save_state`` after step k has returned (the snapshot is durable);
- ``result <sum>`` when the task completed.

With HOLD_AFTER, the run stops moving after that step's checkpoint and waits (still
running) to be killed, so the parent's SIGKILL always lands mid-run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import structlog

from microscheduler import (
    InterruptContext,
    Priority,
    SQLiteSnapshotStore,
    Task,
    TaskExecutor,
    WorkerConfig,
)


class Progress:
    """Steps done and the running sum of their squares, saved as JSON."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0

    def save(self) -> bytes:
        return json.dumps({"done": self.done, "total": self.total}).encode()

    def restore(self, data: bytes) -> None:
        saved = json.loads(data)
        self.done, self.total = saved["done"], saved["total"]


def say(line: str) -> None:
    print(line, flush=True)


async def main(db: str, key: str, steps: int, hold_after: int | None) -> None:
    async def count(_resource: object, state: Progress, interrupt: InterruptContext) -> int:
        say(f"resumed {state.done} attempt {interrupt.attempt}")
        while state.done < steps:
            step = state.done + 1
            say(f"step {step}")
            state.total += step * step
            state.done = step
            await interrupt.save_state(state)
            say(f"saved {step}")
            if hold_after is not None and step >= hold_after:
                await asyncio.Event().wait()
            await asyncio.sleep(0)
        return state.total

    store = SQLiteSnapshotStore(db)
    config = WorkerConfig(snapshot_store=store)
    async with store, TaskExecutor.from_config(config) as executor:
        task = Task(
            name="count",
            key=key,
            compute=count,
            priority=Priority.BACKGROUND,
            initial_state=Progress(),
        )
        say(f"result {await executor.execute(task)}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    hold = int(sys.argv[4]) if len(sys.argv) > 4 else None
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), hold))
