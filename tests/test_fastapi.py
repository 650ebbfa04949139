"""The FastAPI integration and the FastAPI example, driven through real apps."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from _integration import GatedModel, doc_snippet, load_example
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from microscheduler import (
    ConfigError,
    ExecutorShutdownError,
    InterruptContext,
    Priority,
    Task,
    TaskExecutor,
    TaskStatus,
    WorkerConfig,
)
from microscheduler.fastapi import ExecutorDep, get_executor, lifespan

example = load_example("fastapi_app")


class LifespanStateSpy:
    """ASGI wrapper that keeps the lifespan state dict the server hands the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.state = scope["state"]
        await self.app(scope, receive, send)


@asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    spy = LifespanStateSpy(app)
    async with (
        LifespanManager(spy) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as client,
    ):
        yield client, spy.state


async def test_chat_preempts_indexing_which_resumes_from_its_last_saved_chunk() -> None:
    """A /chat request preempts running /index work, and the indexing resumes where it was."""
    model = GatedModel(gated_document="notes", gated_chunk=1)
    app = example.create_app(model=model)
    async with _serving(app) as (client, state):
        accepted = await client.post("/index", json={"document": "notes", "chunks": 3})
        assert accepted.status_code == 202
        job = accepted.json()["job"]
        await model.wait_gate_entered(1)

        # Hang guard only: one worker and a closed gate, so the chat can only be answered by
        # preempting the indexing run.
        async with asyncio.timeout(10):
            chat = await client.post("/chat", json={"message": "hello"})
        assert chat.status_code == 200
        assert chat.json() == {"reply": "re: hello"}

        await model.wait_gate_entered(2)  # the rerun restored chunk 1 and is blocked again
        stats = (await client.get("/stats")).json()
        assert stats["queued"] == {"UI": 0, "LastEffort": 0, "Background": 0}
        assert stats["running"] == 1
        assert stats["completed"] == 1
        assert stats["preempted"] == 1
        assert stats["rescheduled"] == 1
        assert (await client.get(f"/index/{job}")).json() == {"job": job, "status": "running"}

        model.release.set()
    executor: TaskExecutor = state["executor"]
    final = executor.statistics()
    result = {"document": "notes", "chunks": 3, "runs": 2}
    assert app.state.jobs.handles[job].result() == result
    assert model.embedded == [("notes", 0), ("notes", 1), ("notes", 1), ("notes", 2)]
    assert (final.completed, final.preempted, final.rescheduled, final.failed) == (2, 1, 1, 0)


async def test_shutdown_drains_running_and_queued_indexing() -> None:
    """Stopping the app lets indexing that is running or queued at that moment finish."""
    model = GatedModel(gated_document="slow", gated_chunk=0)
    app = example.create_app(model=model)
    spy = LifespanStateSpy(app)
    manager = LifespanManager(spy)
    await manager.__aenter__()
    transport = httpx.ASGITransport(app=manager.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        slow = (await client.post("/index", json={"document": "slow", "chunks": 2})).json()
        await model.wait_gate_entered(1)
        stopping = asyncio.create_task(manager.__aexit__(None, None, None))
        try:
            # Jobs accepted until the shutdown begins queue up behind the blocked one; the
            # first 503 shows the executor is draining while "slow" still holds the gate.
            accepted: list[str] = []
            while True:
                probe = await client.post("/index", json={"document": "probe", "chunks": 1})
                if probe.status_code == 503:
                    break
                accepted.append(probe.json()["job"])
                await asyncio.sleep(0)
            assert probe.json() == {"detail": "the service is shutting down"}
            assert not stopping.done()
            model.release.set()
        finally:
            model.release.set()
            await stopping
    handles = app.state.jobs.handles
    assert handles[slow["job"]].result() == {"document": "slow", "chunks": 2, "runs": 1}
    for job in accepted:
        assert handles[job].result() == {"document": "probe", "chunks": 1, "runs": 1}
    stats = spy.state["executor"].statistics()
    assert stats.completed == 1 + len(accepted)
    assert (stats.failed, stats.cancelled, stats.running) == (0, 0, 0)


async def test_stats_endpoint_reports_executor_statistics_as_json() -> None:
    """/stats returns every statistics field, with lanes named as str(Priority) gives them."""
    app = example.create_app()
    async with _serving(app) as (client, state):
        assert (await client.post("/chat", json={"message": "hi"})).status_code == 200
        stats = (await client.get("/stats")).json()
        expected = state["executor"].statistics().as_dict()
    assert stats == expected
    assert stats["queued"] == {"UI": 0, "LastEffort": 0, "Background": 0}
    assert stats["completed"] == 1
    assert stats["submitted"] == 1


async def test_handlers_reach_the_executor_through_request_state_and_depends() -> None:
    """Inside a nested lifespan, request.state.executor and Depends(get_executor) agree."""
    config = WorkerConfig(ui_workers=1, background_workers=1)

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with lifespan(config)(app) as state:
            yield {**state, "greeting": "hi"}

    app = FastAPI(lifespan=app_lifespan)

    @app.get("/probe")
    async def probe(
        request: Request,
        executor: TaskExecutor = Depends(get_executor),  # noqa: B008 - FastAPI's idiom
    ) -> dict[str, Any]:
        task = Task(name="probe", compute=lambda *_: 7, priority=Priority.UI)
        return {
            "same": request.state.executor is executor,
            "greeting": request.state.greeting,
            "result": await executor.execute(task),
        }

    async with _serving(app) as (client, state):
        response = await client.get("/probe")
        assert state["executor"].statistics().completed == 1
    assert response.json() == {"same": True, "greeting": "hi", "result": 7}


async def test_each_start_of_the_app_gets_a_fresh_executor() -> None:
    """Restarting an app starts a new executor, since a shut-down one cannot restart."""
    app = FastAPI(lifespan=lifespan(1))

    @app.get("/run")
    async def run(executor: ExecutorDep) -> int:
        return await executor.execute(Task(name="n", compute=lambda *_: 1))

    executors = []
    for _ in range(2):
        async with _serving(app) as (client, state):
            assert (await client.get("/run")).json() == 1
            executors.append(state["executor"])
    assert executors[0] is not executors[1]
    assert [e.statistics().completed for e in executors] == [1, 1]


async def test_get_executor_without_the_lifespan_raises_a_clear_error() -> None:
    """Depending on get_executor in an app without the lifespan raises RuntimeError."""
    app = FastAPI()

    @app.get("/run")
    async def run(executor: ExecutorDep) -> None:
        raise AssertionError("unreachable")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match=r"no microscheduler executor in the lifespan state"):
            await client.get("/run")


async def test_lifespan_left_by_an_exception_shuts_down_without_draining() -> None:
    """An exception inside the lifespan interrupts running work instead of waiting for it."""
    started = asyncio.Event()
    reasons: list[str | None] = []

    async def hold(_resource: object, _state: object, interrupt: InterruptContext) -> None:
        started.set()
        await interrupt.wait()
        reasons.append(interrupt.reason)

    with pytest.raises(LookupError, match="app failed"):
        async with lifespan(1)(FastAPI()) as state:
            task: Task[None] = Task(name="hold", compute=hold)
            handle = state["executor"].submit_nowait(task)
            await started.wait()
            raise LookupError("app failed")
    with pytest.raises(ExecutorShutdownError, match="executor is shutdown"):
        await handle
    assert reasons == ["shutdown"]


async def test_drain_timeout_bounds_how_long_shutdown_waits() -> None:
    """Work still running when drain_timeout expires is interrupted and its caller told so."""
    started = asyncio.Event()
    never = asyncio.Event()

    async def hold(_resource: object, _state: object, _interrupt: InterruptContext) -> None:
        started.set()
        await never.wait()

    async with lifespan(1, drain_timeout=0)(FastAPI()) as state:
        task: Task[None] = Task(name="hold", compute=hold)
        handle = state["executor"].submit_nowait(task)
        await started.wait()
    with pytest.raises(ExecutorShutdownError, match="executor is shutdown"):
        await handle
    assert not never.is_set()


def test_lifespan_rejects_bad_configuration_at_once() -> None:
    """lifespan() refuses a non-config, a processor count below 1 and a negative drain."""
    with pytest.raises(TypeError, match="config must be a WorkerConfig or a processor count"):
        lifespan("2")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="processor count must be at least 1, got 0"):
        lifespan(0)
    with pytest.raises(ValueError, match="drain_timeout cannot be negative, got -1"):
        lifespan(1, drain_timeout=-1)


async def test_example_under_a_real_uvicorn_server_loses_no_task() -> None:
    """Concurrent requests to the example under uvicorn all complete, and the stop drains."""
    app = example.create_app()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts lets early connections wait in the backlog, so the
    # requests need not wait for a "started" flag.
    listener.listen(128)
    port = listener.getsockname()[1]
    spy = LifespanStateSpy(app)
    server = uvicorn.Server(
        uvicorn.Config(spy, lifespan="on", log_config=None, log_level="warning")
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30
        ) as client:
            requests = [
                client.post("/index", json={"document": f"doc{i}", "chunks": 2}) for i in range(20)
            ] + [client.post("/chat", json={"message": f"m{i}"}) for i in range(20)]
            responses = await asyncio.gather(*requests)
    finally:
        server.should_exit = True
        await serving
        listener.close()
    assert [r.status_code for r in responses] == [202] * 20 + [200] * 20
    assert [r.json()["reply"] for r in responses[20:]] == [f"you said: m{i}" for i in range(20)]
    handles = app.state.jobs.handles
    assert sorted(handles) == sorted(r.json()["job"] for r in responses[:20])
    assert all(handle.status is TaskStatus.COMPLETED for handle in handles.values())
    results = sorted(handle.result()["document"] for handle in handles.values())
    assert results == sorted(f"doc{i}" for i in range(20))
    stats = spy.state["executor"].statistics()
    assert (stats.submitted, stats.completed, stats.failed, stats.cancelled) == (40, 40, 0, 0)
    assert sum(stats.queued.values()) + stats.running == 0


@pytest.mark.parametrize(
    ("snippet", "path", "expected"),
    [
        ("fastapi", "/summary", {"summary": "a summary"}),
        ("fastapi-nested", "/greet", {"greeting": "hello"}),
    ],
)
async def test_docs_snippet_serves_its_endpoint(
    snippet: str, path: str, expected: dict[str, str]
) -> None:
    """Each FastAPI snippet in docs/integrations.md runs and answers through its executor."""
    namespace: dict[str, Any] = {"__name__": f"docs_snippet_{snippet}"}
    exec(compile(doc_snippet(snippet), f"docs/integrations.md:{snippet}", "exec"), namespace)
    async with _serving(namespace["app"]) as (client, state):
        response = await client.get(path)
        assert state["executor"].statistics().completed == 1
    assert response.json() == expected


async def test_the_example_ships_the_readmes_recommended_slice() -> None:
    """The FastAPI example's executor runs one processor with the min_background_slice the
    README recommends for a service sharing one model (the defaults thrash)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (recommended,) = set(re.findall(r"`min_background_slice=([\d.]+)`", readme))
    app = example.create_app()
    async with _serving(app) as (_client, state):
        config = state["executor"].config
    assert config.min_background_slice == float(recommended)
    assert config.total_workers == 1


async def test_summaries_with_the_simulated_model_have_every_token_once() -> None:
    """Without a real model the example's /summarise simulates a generation that a chat
    turn may preempt; the summary has each of its tokens exactly once, in order."""
    app = example.create_app()
    async with _serving(app) as (client, _state):
        accepted = await client.post("/summarise", json={"document": "notes", "max_tokens": 50})
        assert accepted.status_code == 202
        chat = await client.post("/chat", json={"message": "hello"})
        assert chat.json() == {"reply": "you said: hello"}
        result = await app.state.jobs.handles[accepted.json()["job"]]
    assert result["tokens"] == 50
    assert result["summary"] == "".join(f" word{n}" for n in range(50))
