"""Benchmark 8 — checkpoint cost: microseconds per durable save, SQLite vs memory.

One coroutine saves a 1 KiB snapshot under one key, again and again, and waits for each
save to return; the figure is wall time / saves. Variants, interleaved round by round:

- ``SQLiteSnapshotStore`` (a file in a temporary directory; WAL, ``synchronous=FULL``,
  the call made in a worker thread): the library figure — what a durable checkpoint costs;
- ``MemorySnapshotStore``: the baseline — what a checkpoint costs when it only has to
  outlive a preemption, not the process;
- peer ``SQLite NORMAL``: ``SQLiteSnapshotStore(path, synchronous="NORMAL")`` — survives
  ``kill -9`` but not a power loss; no fsync per save;
- peer ``sqlite3 on the loop``: the same upsert and commit called directly on the event
  loop (blocking it): the database's own cost, without the hop to a worker thread.

Which call is timed: once the executor writes a keyed task's ``interrupt.save_state``
through to its store (``Task.key`` and ``WorkerConfig.snapshot_store`` exist), the two
store variants time ``await interrupt.save_state(state)`` inside a keyed task of an
executor built on that store; before that, they time ``await store.save(key, data)``
directly. The row's ``detail.timed_call`` says which was measured.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from . import _library as lib
from ._harness import Row, Variant, interleave, median, run
from ._settings import Settings

SNAPSHOT = bytes(range(256)) * 4  # 1 KiB


class Blob:
    """A TaskState whose snapshot is always :data:`SNAPSHOT`."""

    def save(self) -> bytes:
        """The snapshot."""
        return SNAPSHOT

    def restore(self, data: bytes) -> None:
        """Nothing to restore: every snapshot is the same."""


def core_writes_through() -> bool:
    """Whether keyed tasks' ``save_state`` writes to ``WorkerConfig.snapshot_store``."""
    m = lib.ms()
    task_fields = {f.name for f in dataclasses.fields(m.Task)}
    config_fields = {f.name for f in dataclasses.fields(m.WorkerConfig)}
    return "key" in task_fields and "snapshot_store" in config_fields


async def _store_saves(store: Any, saves: int) -> float:
    start = time.perf_counter()
    for _ in range(saves):
        await store.save("bench", SNAPSHOT)
    return (time.perf_counter() - start) / saves


async def _save_state_calls(store: Any, saves: int) -> float:
    m = lib.ms()
    elapsed = 0.0

    async def compute(resource: object, state: Blob, interrupt: Any) -> None:
        nonlocal elapsed
        start = time.perf_counter()
        for _ in range(saves):
            await interrupt.save_state(state)
        elapsed = time.perf_counter() - start

    config = m.WorkerConfig(snapshot_store=store)
    async with m.TaskExecutor.from_config(config) as executor:
        task = m.Task(name="checkpoints", key="bench", compute=compute, initial_state=Blob())
        await executor.execute(task)
    return elapsed / saves


async def _measure(settings: Settings, directory: Path) -> dict[str, Any]:
    m = lib.ms()
    saves = settings.checkpoint_saves
    through_executor = core_writes_through()
    timed = _save_state_calls if through_executor else _store_saves
    memory = m.MemorySnapshotStore()
    sqlite_store = m.SQLiteSnapshotStore(directory / "store.db")
    normal_store = m.SQLiteSnapshotStore(directory / "normal.db", synchronous="NORMAL")
    if not through_executor:
        for store in (memory, sqlite_store, normal_store):
            await store.open()

    direct = sqlite3.connect(directory / "direct.db", isolation_level=None)
    direct.execute("PRAGMA journal_mode=WAL")
    direct.execute("PRAGMA synchronous=FULL")
    direct.execute("CREATE TABLE IF NOT EXISTS s (key TEXT PRIMARY KEY, data BLOB, at REAL)")

    async def on_the_loop() -> float:
        start = time.perf_counter()
        for _ in range(saves):
            direct.execute("BEGIN IMMEDIATE")
            direct.execute(
                "INSERT INTO s VALUES ('bench', ?, ?) ON CONFLICT (key) DO UPDATE "
                "SET data = excluded.data, at = excluded.at",
                (SNAPSHOT, time.time()),
            )
            direct.execute("COMMIT")
        return (time.perf_counter() - start) / saves

    variants: dict[str, Variant] = {
        "sqlite": partial(timed, sqlite_store, saves),
        "memory": partial(timed, memory, saves),
        "normal": partial(timed, normal_store, saves),
        "direct": on_the_loop,
    }
    try:
        samples = await interleave(variants, settings.rounds)
    finally:
        direct.close()
        for store in (memory, sqlite_store, normal_store):
            await store.close()
    return {
        "samples_s_per_save": samples,
        "timed_call": "interrupt.save_state" if through_executor else "store.save",
        "saves_per_round": saves,
        "snapshot_bytes": len(SNAPSHOT),
    }


def measure(settings: Settings, loop: str) -> list[Row]:
    """Time durable saves on ``loop``: one row, SQLite against memory."""
    if lib.unavailable_reason() is not None or not hasattr(lib.ms(), "SQLiteSnapshotStore"):
        return []
    with tempfile.TemporaryDirectory(prefix="microscheduler-bench-") as directory:
        found = run(loop, partial(_measure, settings, Path(directory)))
    samples = found["samples_s_per_save"]
    sqlite_s, memory_s = median(samples["sqlite"]), median(samples["memory"])
    return [
        Row(
            benchmark="checkpoint cost",
            size=f"1 KiB, {found['timed_call']}",
            loop=loop,
            unit="s/task",
            library=sqlite_s,
            baseline=memory_s,
            baseline_name="MemorySnapshotStore",
            ratio=sqlite_s / memory_s if memory_s else None,
            target=None,
            peers={
                "SQLite NORMAL": median(samples["normal"]),
                "sqlite3 on the loop": median(samples["direct"]),
            },
            detail={**found, "note": "seconds per durable save ('s/task' column: per save)"},
        )
    ]
