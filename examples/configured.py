"""A configured executor: background workers, one client per worker, three lanes, logging."""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator

from microscheduler import (
    InterruptContext,
    Priority,
    Task,
    TaskExecutor,
    WorkerConfig,
    WorkerType,
)

# The library is silent until logging is configured; INFO shows the executor's lifecycle,
# DEBUG would add every task's events (task_started, task_completed, ...).
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("microscheduler").setLevel(logging.INFO)


class Client:
    """Stands in for a database connection or an API client."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False


clients: list[Client] = []


@contextlib.asynccontextmanager
async def open_client(worker_id: int, worker_type: WorkerType) -> AsyncIterator[Client]:
    client = Client(f"{worker_type}-{worker_id}")
    clients.append(client)
    try:
        yield client  # every task this worker runs gets it as its `resource`
    finally:
        client.closed = True  # at shutdown


class Pages:
    """Resumable state: how many pages are done."""

    def __init__(self) -> None:
        self.done = 0

    def save(self) -> bytes:
        return json.dumps(self.done).encode()

    def restore(self, data: bytes) -> None:
        self.done = json.loads(data)


def crunch(client: Client, state: Pages, interrupt: InterruptContext) -> int:
    """A sync compute: it runs in a worker thread and polls for interruption."""
    while state.done < 5 and not interrupt.is_interrupted():
        time.sleep(0.01)  # CPU-bound work on one page
        state.done += 1
        interrupt.save_state_nowait(state)  # a thread checkpoints without await
    return state.done


async def prefetch(client: Client, state: object, interrupt: InterruptContext) -> str:
    return f"next page prefetched by {client.name}"


async def answer(client: Client, state: object, interrupt: InterruptContext) -> str:
    return f"answered by {client.name}"


async def main() -> None:
    config = WorkerConfig(
        ui_workers=1,  # serves the UI and LastEffort lanes
        background_workers=2,  # serve the Background lane
        background_buffer_size=1_000,
        resource_factory=open_client,
    )
    async with TaskExecutor(config, drain_timeout=30.0) as executor:
        # A Task without priority= goes to the Background lane; initial_state=Pages (the
        # class) gives each execution a fresh Pages.
        pages = await executor.submit(Task(name="crunch", compute=crunch, initial_state=Pages))
        reply = await executor.execute(Task(name="answer", compute=answer, priority=Priority.UI))
        print(reply)
        hint = await executor.execute(
            Task(name="prefetch", compute=prefetch, priority=Priority.LAST_EFFORT)
        )
        print(hint)
        print(f"crunched {await pages} pages")
        await executor.join()  # idle now: nothing queued or running
        print(f"completed {executor.statistics().completed} tasks")
    print(f"clients closed: {all(client.closed for client in clients)}")


if __name__ == "__main__":
    asyncio.run(main())
