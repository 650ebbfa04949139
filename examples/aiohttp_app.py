"""A chat service whose model also indexes documents when nobody is waiting (aiohttp).

Run it with ``python examples/aiohttp_app.py`` (it listens on 127.0.0.1:8080), then::

    curl -X POST localhost:8080/index -H 'content-type: application/json' \\
         -d '{"document": "notes", "chunks": 50}'
    curl -X POST localhost:8080/chat -H 'content-type: application/json' \\
         -d '{"message": "hello"}'
    curl localhost:8080/stats

The same service as ``examples/fastapi_app.py``: the one (here simulated) language model is
the scarce resource, so a single-processor executor runs ``/chat`` as UI work that preempts
the Background ``/index`` work, which saves its progress after every chunk and resumes from
there. ``microscheduler.aiohttp.setup`` ties the executor to the app's life: it starts with
the app and is drained (for at most ten seconds) at cleanup. A malformed body (not JSON, not
an object, a missing or mistyped field) is answered with 400 and ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Protocol

from aiohttp import web

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
from microscheduler.aiohttp import get_executor, setup


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


MODEL_KEY = web.AppKey[Model]("model")
JOBS_KEY = web.AppKey("jobs", Jobs)


def _bad_request(detail: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"detail": detail}), content_type="application/json")


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 answer saying what is wrong with it."""
    try:
        body = await request.json()
    except ValueError:  # json.JSONDecodeError, and a body that is not UTF-8
        raise _bad_request("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    return body


def _string_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _bad_request(f"{name!r} must be a non-empty string")
    return value


def _shutting_down() -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(
        text=json.dumps({"detail": "the service is shutting down"}),
        content_type="application/json",
    )


async def chat(request: web.Request) -> web.Response:
    """``POST /chat {"message": ...}``: answer at UI priority, preempting indexing."""
    message = _string_field(await _json_object(request), "message")
    model = request.app[MODEL_KEY]

    async def compute(_resource: object, _state: TaskState, _interrupt: InterruptContext) -> str:
        return await model.reply(message)

    task: Task[str] = Task(name="chat", compute=compute, priority=Priority.UI)
    try:
        reply = await get_executor(request).execute(task)
    except ExecutorShutdownError:
        raise _shutting_down() from None
    return web.json_response({"reply": reply})


async def index(request: web.Request) -> web.Response:
    """``POST /index {"document": ..., "chunks": n}``: queue resumable Background indexing."""
    body = await _json_object(request)
    document = _string_field(body, "document")
    chunks = body.get("chunks", 3)
    if type(chunks) is not int or not 1 <= chunks <= 10_000:  # a bool is not a count
        raise _bad_request("'chunks' must be an integer between 1 and 10000")
    model = request.app[MODEL_KEY]

    async def compute(
        _resource: object, state: TaskState, interrupt: InterruptContext
    ) -> dict[str, Any]:
        assert isinstance(state, IndexProgress)  # the initial_state given below
        progress = state
        while progress.done < chunks:
            await model.embed(document, progress.done)
            progress.done += 1
            await interrupt.save_state(progress)
        return {"document": document, "chunks": progress.done, "runs": interrupt.attempt}

    task: Task[dict[str, Any]] = Task(
        name=f"index:{document}",
        compute=compute,
        priority=Priority.BACKGROUND,
        initial_state=IndexProgress(),
    )
    try:
        handle = await get_executor(request).submit(task)
    except ExecutorShutdownError:
        raise _shutting_down() from None
    job = request.app[JOBS_KEY].add(handle)
    return web.json_response({"job": job, "status": "queued"}, status=202)


async def index_status(request: web.Request) -> web.Response:
    """``GET /index/{job}``: the status (and, once completed, the result) of a job."""
    job = request.match_info["job"]
    handle = request.app[JOBS_KEY].handles.get(job)
    if handle is None:
        raise web.HTTPNotFound(text=f"no indexing job {job}")
    if handle.status is TaskStatus.COMPLETED:
        return web.json_response({"job": job, "status": "completed", "result": handle.result()})
    return web.json_response({"job": job, "status": handle.status.name.lower()})


async def stats(request: web.Request) -> web.Response:
    """``GET /stats``: the executor's statistics."""
    return web.json_response(get_executor(request).statistics().as_dict())


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
) -> web.Application:
    """Build the service.

    Args:
        config: The executor's configuration; :data:`SERVICE_CONFIG` by default.
        model: The model to serve; a :class:`SimulatedModel` by default.
        drain_timeout: Seconds queued indexing may take to finish at cleanup.

    Returns:
        The aiohttp application.
    """
    app = web.Application()
    app[MODEL_KEY] = model if model is not None else SimulatedModel()
    app[JOBS_KEY] = Jobs()
    app.router.add_post("/chat", chat)
    app.router.add_post("/index", index)
    app.router.add_get("/index/{job}", index_status)
    app.router.add_get("/stats", stats)
    setup(app, config, drain_timeout=drain_timeout)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
