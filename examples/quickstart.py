"""The README's quick-start example: a UI task preempts resumable background indexing."""

import asyncio
import json

from microscheduler import InterruptContext, Priority, Task, TaskExecutor


class Progress:
    """Resumable state: how many documents are indexed, saved as JSON."""

    def __init__(self) -> None:
        self.done = 0

    def save(self) -> bytes:
        return json.dumps(self.done).encode()

    def restore(self, data: bytes) -> None:
        self.done = json.loads(data)


async def index_documents(resource: object, state: Progress, interrupt: InterruptContext) -> int:
    while state.done < 20:
        await asyncio.sleep(0.01)  # index one document
        state.done += 1
        await interrupt.save_state(state)  # checkpoint: a rerun resumes from here
    return state.done


async def answer(resource: object, state: object, interrupt: InterruptContext) -> str:
    return "hello from the UI lane"


async def main() -> None:
    async with TaskExecutor(1) as executor:  # one worker: UI work preempts Background work
        indexing = await executor.submit(
            Task(name="index", compute=index_documents, initial_state=Progress())
        )
        await asyncio.sleep(0.05)  # let the indexing get going
        reply = await executor.execute(Task(name="chat", compute=answer, priority=Priority.UI))
        print(reply)  # answered at once: the indexing was preempted for it
        print(f"indexed {await indexing} documents in {indexing.attempt} runs")
        stats = executor.statistics()
        print(f"preempted {stats.preempted} time(s), completed {stats.completed} tasks")


if __name__ == "__main__":
    asyncio.run(main())
