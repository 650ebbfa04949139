"""A chat service whose model also indexes documents when nobody is waiting (FastAPI).

Run it with ``uvicorn examples.fastapi_app:app`` from the repository root, then::

    curl -X POST localhost:8000/index -H 'content-type: application/json' \\
         -d '{"document": "notes", "chunks": 50}'
    curl -X POST localhost:8000/chat -H 'content-type: application/json' \\
         -d '{"message": "hello"}'
    curl localhost:8000/stats

The service owns one scarce resource, a (here simulated) language model, so it runs a
single-processor executor: ``/chat`` runs a UI task that preempts whatever indexing is under
way, and ``/index`` queues a Background task that saves its progress after every chunk and,
once preempted, resumes from the last saved chunk instead of starting over. At shutdown the
queued indexing is drained (for at most ten seconds).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from microscheduler import (
    ExecutorShutdownError,
    InterruptContext,
    Priority,
    Task,
    TaskHandle,
    TaskState,
    TaskStatus,
    WorkerConfig,
)
from microscheduler.fastapi import ExecutorDep, lifespan


class Model(Protocol):
    """The scarce resource: whatever answers prompts and embeds text."""

    async def reply(self, message: str) -> str:
        """Answer a chat message."""
        ...

    async def embed(self, document: str, chunk: int) -> None:
        """Embed one chunk of a document."""
        ...


class SimulatedModel:
    """Stands in for a local language model: every call takes a little while."""

    async def reply(self, message: str) -> str:
        """Answer a chat message."""
        await asyncio.sleep(0.005)
        return f"you said: {message}"

    async def embed(self, document: str, chunk: int) -> None:
        """Embed one chunk of a document."""
        await asyncio.sleep(0.01)


class IndexProgress:
    """Resumable state of one indexing task: how many chunks are done."""

    def __init__(self) -> None:
        self.done = 0

    def save(self) -> bytes:
        """Snapshot the progress."""
        return json.dumps({"done": self.done}).encode()

    def restore(self, data: bytes) -> None:
        """Resume from a snapshot."""
        self.done = json.loads(data)["done"]


class ChatRequest(BaseModel):
    """Body of ``POST /chat``."""

    message: str


class IndexRequest(BaseModel):
    """Body of ``POST /index``."""

    document: str
    chunks: int = Field(default=3, ge=1, le=10_000)


class Jobs:
    """The indexing tasks the service has accepted, by id."""

    def __init__(self) -> None:
        self.handles: dict[str, TaskHandle[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def add(self, handle: TaskHandle[dict[str, Any]]) -> str:
        """Remember a task and return its new id."""
        job_id = str(next(self._ids))
        self.handles[job_id] = handle
        return job_id


#: The executor's settings, as the README's "Starvation" section recommends for a service
#: sharing one model: one processor (the model is one resource), and a Background run is
#: preempted only once it has run a little longer than one 10 ms chunk, so it always reaches
#: a checkpoint. With the defaults, one closed-loop chat user starts and aborts about 130
#: chunk calls a second and indexing makes no progress (the executor then logs
#: ``background_thrashing``).
SERVICE_CONFIG = WorkerConfig(ui_workers=1, background_workers=0, min_background_slice=0.012)


def create_app(
    config: WorkerConfig | int = SERVICE_CONFIG,
    *,
    model: Model | None = None,
    drain_timeout: float = 10.0,
) -> FastAPI:
    """Build the service.

    Args:
        config: The executor's configuration; :data:`SERVICE_CONFIG` by default.
        model: The model to serve; a :class:`SimulatedModel` by default.
        drain_timeout: Seconds queued indexing may take to finish at shutdown.

    Returns:
        The FastAPI application.
    """
    the_model: Model = model if model is not None else SimulatedModel()
    jobs = Jobs()
    executor_lifespan = lifespan(config, drain_timeout=drain_timeout)

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # Nesting microscheduler's lifespan in our own: the executor is drained before the
        # rest of the app's resources go away.
        async with executor_lifespan(app) as state:
            yield {**state, "jobs": jobs}

    app = FastAPI(title="microscheduler FastAPI example", lifespan=app_lifespan)
    app.state.jobs = jobs

    @app.post("/chat")
    async def chat(body: ChatRequest, executor: ExecutorDep) -> dict[str, str]:
        async def compute(_resource: object, _state: object, _interrupt: InterruptContext) -> str:
            return await the_model.reply(body.message)

        task: Task[str] = Task(name="chat", compute=compute, priority=Priority.UI)
        try:
            return {"reply": await executor.execute(task)}
        except ExecutorShutdownError:
            raise HTTPException(503, "the service is shutting down") from None

    @app.post("/index", status_code=202)
    async def index(body: IndexRequest, executor: ExecutorDep) -> dict[str, str]:
        async def compute(
            _resource: object, state: TaskState, interrupt: InterruptContext
        ) -> dict[str, Any]:
            assert isinstance(state, IndexProgress)  # the initial_state given below
            progress = state
            while progress.done < body.chunks:
                await the_model.embed(body.document, progress.done)
                progress.done += 1
                await interrupt.save_state(progress)
            return {"document": body.document, "chunks": progress.done, "runs": interrupt.attempt}

        task: Task[dict[str, Any]] = Task(
            name=f"index:{body.document}",
            compute=compute,
            priority=Priority.BACKGROUND,
            initial_state=IndexProgress(),
        )
        try:
            handle = await executor.submit(task)
        except ExecutorShutdownError:
            raise HTTPException(503, "the service is shutting down") from None
        return {"job": jobs.add(handle), "status": "queued"}

    @app.get("/index/{job}")
    async def index_status(job: str) -> dict[str, Any]:
        handle = jobs.handles.get(job)
        if handle is None:
            raise HTTPException(404, f"no indexing job {job}")
        if handle.status is TaskStatus.COMPLETED:
            return {"job": job, "status": "completed", "result": handle.result()}
        return {"job": job, "status": handle.status.name.lower()}

    @app.get("/stats")
    async def stats(executor: ExecutorDep) -> dict[str, Any]:
        return executor.statistics().as_dict()

    return app


app = create_app()
