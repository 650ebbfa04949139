"""Scale out with Ray: a served scheduler in front of a pool of model actors.

Run it as it is (it starts a local Ray; set RAY_ADDRESS to join a running cluster)::

    python examples/ray_cluster.py

A long Background report is generated on the pool's actor; a UI chat request arrives while
it runs, preempts it (its remote call is cancelled), answers, and the report then resumes
from its last checkpoint instead of starting over. Any other process of the cluster could
submit through ``await connect("assistant")`` with the same API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ray

from microscheduler import InterruptContext, Priority, Task, TaskStatus, WorkerConfig
from microscheduler.ray import Checkpoint, actor_pool, run_remote, serve


@ray.remote
class Model:
    """Stands for a model on a GPU: generates one word per decoding step."""

    def __init__(self) -> None:
        self.steps = 0

    async def generate(
        self, prompt: str, words: int, *, snapshot: bytes | None = None
    ) -> AsyncIterator[object]:
        text = snapshot.decode().split() if snapshot else []
        while len(text) < words:
            await asyncio.sleep(0.02)  # one decoding step; a cancellation lands here
            self.steps += 1
            text.append(f"{prompt}{len(text)}")
            yield Checkpoint(" ".join(text).encode())  # a preempted run resumes from here
        yield " ".join(text)

    async def decoding_steps(self) -> int:
        return self.steps


def generation(
    prompt: str, words: int
) -> Callable[[Any, object, InterruptContext], Awaitable[str]]:
    """A compute that runs ``Model.generate`` on the worker's actor."""

    async def compute(model: Any, state: object, interrupt: InterruptContext) -> str:
        text: str = await run_remote(interrupt, model.generate, prompt, words)
        return text

    return compute


async def main() -> None:
    # On GPUs: actor_pool(Model, options={"num_gpus": 1}), one actor per worker.
    config = WorkerConfig(resource_factory=actor_pool(Model, options={"name": "model"}))
    scheduler = await serve("assistant", config)
    try:
        report = await scheduler.submit(Task(name="report", compute=generation("r", 40)))
        # Wait until the scheduler reports the report running (a remote status: no event).
        while report.status is not TaskStatus.RUNNING:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        chat = Task(name="chat", compute=generation("hi", 3), priority=Priority.UI)
        answer = await scheduler.execute(chat)
        print("chat:", answer)
        print("report:", len((await report).split()), "words")
        stats = await scheduler.statistics()
        model: Any = ray.get_actor("model-0")  # Ray's actor handles are untyped
        steps = await model.decoding_steps.remote()
        print(f"preempted {stats.preempted} time(s); {steps} decoding steps for 43 words")
    finally:
        await scheduler.shutdown()


if __name__ == "__main__":
    ray.init(include_dashboard=False)
    try:
        asyncio.run(main())
    finally:
        ray.shutdown()
