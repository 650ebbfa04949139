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

With ``--process`` the task runs in a worker process (``runs_in="process"``) and checkpoints
with ``save_state_nowait``: the child process prints ``resumed``/``step`` lines, and this
process prints ``saved <k>`` once the executor has written snapshot k to SQLite.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
import threading
from typing import Any

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
    # One write per line: with --process, two processes print to the same pipe.
    os.write(sys.stdout.fileno(), f"{line}\n".encode())


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


def count_in_process(
    steps: int, hold_after: int | None, _: object, state: Progress, interrupt: Any
) -> int:
    """The same count in a worker process, checkpointing with ``save_state_nowait``."""
    say(f"resumed {state.done} attempt {interrupt.attempt}")
    while state.done < steps:
        step = state.done + 1
        say(f"step {step}")
        state.total += step * step
        state.done = step
        interrupt.save_state_nowait(state)
        if hold_after is not None and step >= hold_after:
            threading.Event().wait()  # still running when the parent is killed
    return state.total


class ReportingStore(SQLiteSnapshotStore):
    """Says ``saved <k>`` once snapshot k is durable."""

    async def save(self, key: str, data: bytes) -> None:
        await super().save(key, data)
        say(f"saved {json.loads(data)['done']}")


async def main_in_process(db: str, key: str, steps: int, hold_after: int | None) -> None:
    config = WorkerConfig(snapshot_store=ReportingStore(db))
    async with TaskExecutor.from_config(config) as executor:
        task = Task(
            name="count",
            key=key,
            compute=functools.partial(count_in_process, steps, hold_after),
            priority=Priority.BACKGROUND,
            initial_state=Progress,
            runs_in="process",
        )
        say(f"result {await executor.execute(task)}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    args = [arg for arg in sys.argv[1:] if arg != "--process"]
    hold = int(args[3]) if len(args) > 3 else None
    run = main_in_process if "--process" in sys.argv else main
    asyncio.run(run(args[0], args[1], int(args[2]), hold))
