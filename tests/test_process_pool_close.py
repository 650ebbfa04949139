"""ProcessPool.close() under a task factory that finishes tasks inside create_task."""

from __future__ import annotations

import asyncio

from microscheduler import WorkerConfig
from microscheduler._processes import ProcessPool


async def test_close_returns_when_ending_tasks_finished_before_their_callbacks_ran() -> None:
    """A child's ending task that finished at once (as under asyncio.eager_task_factory,
    before its done callback removed it from the pool) does not keep close() spinning."""
    pool = ProcessPool(WorkerConfig())

    async def ended() -> None:
        return None

    task = asyncio.get_running_loop().create_task(ended())
    await task
    pool._ending.add(task)  # finished; its discard callback has not run (eager-style)
    await pool.close()  # (a spinning close never yields: pytest-timeout ends the test)
    assert not pool._ending
