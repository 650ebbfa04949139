"""A driver process that sets no Ray namespace: it serves, uses or looks for a scheduler.

``python _plain_driver.py ADDRESS NAME ROLE``, after ``ray.init(address=ADDRESS)`` with no
``namespace=`` (so the job's namespace is an anonymous one of its own):

* ``serve``: ``serve(NAME, WorkerConfig())``, prints ``served``, waits for a line on stdin,
  shuts the scheduler down and prints ``stopped``;
* ``use``: ``connect(NAME)``, executes a task, prints ``result ...`` and closes; then runs
  a local executor over an ``actor_pool`` whose compute uses ``run_remote`` and prints
  ``pool ...``;
* ``missing``: ``connect(NAME)`` must fail; prints the error's message.

Ray's own logging is left unconfigured (``configure_logging=False``) and its workers' output
is not forwarded, so whatever this process prints on stderr comes from microscheduler.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import ray

from microscheduler import InterruptContext, Priority, Task, TaskExecutor, WorkerConfig
from microscheduler.ray import (
    Checkpoint,
    SchedulerUnavailableError,
    actor_pool,
    connect,
    run_remote,
    serve,
)


@ray.remote
class Counter:
    async def count(self, to: int, *, snapshot: bytes | None = None) -> AsyncIterator[object]:
        for step in range(int(snapshot or b"0"), to):
            yield Checkpoint(str(step + 1).encode())
        yield to


async def counted(resource: Any, state: object, interrupt: InterruptContext) -> int:
    result: int = await run_remote(interrupt, resource.count, 3)
    return result


async def double(resource: object, state: object, interrupt: InterruptContext) -> int:
    return 21 * 2


async def main(name: str, role: str) -> None:
    if role == "serve":
        client = await serve(name, WorkerConfig())
        print("served", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await client.shutdown()
        print("stopped", flush=True)
    elif role == "use":
        client = await connect(name)
        task = Task(name="double", compute=double, priority=Priority.UI)
        print("result", await client.execute(task), flush=True)
        await client.close()
        config = WorkerConfig(resource_factory=actor_pool(Counter, options={"num_cpus": 0}))
        async with TaskExecutor.from_config(config) as executor:
            print("pool", await executor.execute(Task(name="count", compute=counted)), flush=True)
    else:
        try:
            await connect(name)
        except SchedulerUnavailableError as exc:
            print(exc, flush=True)


if __name__ == "__main__":
    address, name, role = sys.argv[1:]
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    asyncio.run(main(name, role))
    ray.shutdown()
