"""The README's observability example: events, a timeline picture, spans and queue waits."""

import asyncio

from microscheduler import (
    InterruptContext,
    Priority,
    SchedulerEvent,
    Task,
    TaskExecutor,
    WorkerConfig,
)
from microscheduler.otel import tracing
from microscheduler.timeline import Timeline


async def index(_resource: object, _state: object, _interrupt: InterruptContext) -> int:
    for _chunk in range(40):
        await asyncio.sleep(0.005)  # one chunk of background work
    return 40


async def answer(_resource: object, _state: object, _interrupt: InterruptContext) -> str:
    await asyncio.sleep(0.01)  # the model thinks
    return "hello"


def print_preemptions(event: SchedulerEvent) -> None:
    if event.kind == "preempted":
        print(f"{event.task}: run {event.attempt} preempted on worker {event.worker_id}")


async def main() -> None:
    timeline = Timeline()
    config = WorkerConfig(on_event=(timeline, tracing(), print_preemptions))
    async with TaskExecutor.from_config(config) as executor:
        indexing = await executor.submit(Task(name="index", compute=index))
        await asyncio.sleep(0.05)  # the user asks while the indexing runs
        await executor.execute(Task(name="answer", compute=answer, priority=Priority.UI))
        await indexing
        ui_wait = executor.statistics().queue_wait[Priority.UI]
    print(f"UI queue wait p99: {(ui_wait.p99 or 0.0) * 1000:.2f} ms over {ui_wait.samples} run")
    timeline.write("timeline.html")  # open it in a browser


asyncio.run(main())
