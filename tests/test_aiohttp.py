"""The aiohttp integration and the aiohttp example, driven through a real aiohttp server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from _integration import GatedModel, doc_snippet, load_example
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from microscheduler import (
    ConfigError,
    ExecutorShutdownError,
    Priority,
    Task,
    TaskExecutor,
    TaskHandle,
    TaskStatus,
    WorkerConfig,
)
from microscheduler.aiohttp import EXECUTOR_KEY, get_executor, get_executor_from_app, setup

example = load_example("aiohttp_app")


@asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_chat_preempts_indexing_which_resumes_from_its_last_saved_chunk() -> None:
    """A /chat request preempts running /index work, and the indexing resumes where it was."""
    model = GatedModel(gated_document="notes", gated_chunk=1)
    app = example.create_app(model=model)
    async with _serving(app) as client:
        accepted = await client.post("/index", json={"document": "notes", "chunks": 3})
        assert accepted.status == 202
        job = (await accepted.json())["job"]
        await model.wait_gate_entered(1)

        # Hang guard only: one worker and a closed gate, so the chat can only be answered by
        # preempting the indexing run.
        async with asyncio.timeout(10):
            chat = await client.post("/chat", json={"message": "hello"})
        assert chat.status == 200
        assert await chat.json() == {"reply": "re: hello"}

        await model.wait_gate_entered(2)  # the rerun restored chunk 1 and is blocked again
        stats = await (await client.get("/stats")).json()
        assert stats["queued"] == {"UI": 0, "LastEffort": 0, "Background": 0}
        assert stats["running"] == 1
        assert stats["completed"] == 1
        assert stats["preempted"] == 1
        assert stats["rescheduled"] == 1
        status = await (await client.get(f"/index/{job}")).json()
        assert status == {"job": job, "status": "running"}

        model.release.set()
    final = get_executor_from_app(app).statistics()
    result = {"document": "notes", "chunks": 3, "runs": 2}
    assert app[example.JOBS_KEY].handles[job].result() == result
    assert model.embedded == [("notes", 0), ("notes", 1), ("notes", 1), ("notes", 2)]
    assert (final.completed, final.preempted, final.rescheduled, final.failed) == (2, 1, 1, 0)


async def test_cleanup_drains_running_and_queued_indexing() -> None:
    """Closing the server lets indexing that is running or queued at that moment finish."""
    model = GatedModel(gated_document="slow", gated_chunk=0)
    app = example.create_app(model=model)
    client = TestClient(TestServer(app))
    await client.start_server()
    probes: list[TaskHandle[None]] = []
    try:
        slow = await (await client.post("/index", json={"document": "slow", "chunks": 2})).json()
        queued = await (await client.post("/index", json={"document": "next", "chunks": 1})).json()
        await model.wait_gate_entered(1)
        executor = get_executor_from_app(app)
        closing = asyncio.create_task(client.close())
        # The server stops taking connections first, so probe the executor itself: the first
        # refusal shows cleanup is draining while "slow" still holds the gate. Probes
        # accepted before that queue up and must finish too.
        while True:
            try:
                probes.append(executor.submit_nowait(Task(name="probe", compute=lambda *_: None)))
            except ExecutorShutdownError:
                break
            await asyncio.sleep(0)
        assert not closing.done()
        model.release.set()
        await closing
    finally:
        model.release.set()
        await client.close()
    handles = app[example.JOBS_KEY].handles
    assert handles[slow["job"]].result() == {"document": "slow", "chunks": 2, "runs": 1}
    assert handles[queued["job"]].result() == {"document": "next", "chunks": 1, "runs": 1}
    assert all(probe.status is TaskStatus.COMPLETED for probe in probes)
    stats = executor.statistics()
    assert stats.completed == 2 + len(probes)
    assert (stats.failed, stats.cancelled, stats.running) == (0, 0, 0)


async def test_stats_endpoint_reports_executor_statistics_as_json() -> None:
    """/stats returns every statistics field, with lanes named as str(Priority) gives them."""
    app = example.create_app()
    async with _serving(app) as client:
        assert (await client.post("/chat", json={"message": "hi"})).status == 200
        stats = await (await client.get("/stats")).json()
        expected = app[EXECUTOR_KEY].statistics().as_dict()
    assert stats == expected
    assert stats["queued"] == {"UI": 0, "LastEffort": 0, "Background": 0}
    assert stats["completed"] == 1
    assert stats["submitted"] == 1


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        ("/chat", b"not json", "the body must be a JSON object"),
        ("/chat", b"[1, 2]", "the body must be a JSON object"),
        ("/chat", b"{}", "'message' must be a non-empty string"),
        ("/chat", b'{"message": 5}', "'message' must be a non-empty string"),
        ("/index", b"{}", "'document' must be a non-empty string"),
        ("/index", b'{"document": "d", "chunks": "abc"}', "'chunks' must be an integer"),
        ("/index", b'{"document": "d", "chunks": true}', "'chunks' must be an integer"),
        ("/index", b'{"document": "d", "chunks": 0}', "'chunks' must be an integer"),
        ("/index", b"\xff\xfe", "the body must be a JSON object"),
    ],
)
async def test_malformed_bodies_get_400_with_a_json_error(
    path: str, body: bytes, detail: str
) -> None:
    """A malformed body is answered 400 with {"detail": ...}, and nothing is queued."""
    app = example.create_app()
    async with _serving(app) as client:
        response = await client.post(path, data=body, headers={"content-type": "application/json"})
        assert response.status == 400
        assert (await response.json())["detail"].startswith(detail)
        assert app[EXECUTOR_KEY].statistics().submitted == 0


async def test_concurrent_requests_all_complete_and_nothing_is_lost() -> None:
    """Concurrent /index and /chat requests all finish, the queued indexing by the drain."""
    app = example.create_app()
    async with _serving(app) as client:

        async def call(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            async with client.post(path, json=body) as response:
                return response.status, await response.json()

        requests = [call("/index", {"document": f"doc{i}", "chunks": 2}) for i in range(20)]
        requests += [call("/chat", {"message": f"m{i}"}) for i in range(20)]
        responses = await asyncio.gather(*requests)
    assert [status for status, _ in responses] == [202] * 20 + [200] * 20
    assert [body["reply"] for _, body in responses[20:]] == [f"you said: m{i}" for i in range(20)]
    handles = app[example.JOBS_KEY].handles
    assert sorted(handles) == sorted(body["job"] for _, body in responses[:20])
    assert all(handle.status is TaskStatus.COMPLETED for handle in handles.values())
    documents = sorted(handle.result()["document"] for handle in handles.values())
    assert documents == sorted(f"doc{i}" for i in range(20))
    stats = app[EXECUTOR_KEY].statistics()
    assert (stats.submitted, stats.completed, stats.failed, stats.cancelled) == (40, 40, 0, 0)


async def test_sub_application_handlers_reach_the_main_apps_executor() -> None:
    """A handler of a sub-application gets the executor set up on the main application."""
    app = web.Application()
    setup(app, WorkerConfig(ui_workers=1, background_workers=1))

    async def probe(request: web.Request) -> web.Response:
        executor = get_executor(request)
        task = Task(name="probe", compute=lambda *_: 7, priority=Priority.UI)
        result = await executor.execute(task)
        same = executor is get_executor_from_app(app)
        return web.json_response({"result": result, "same": same})

    sub = web.Application()
    sub.router.add_get("/probe", probe)
    app.add_subapp("/sub", sub)
    async with _serving(app) as client:
        body = await (await client.get("/sub/probe")).json()
        assert app[EXECUTOR_KEY].statistics().workers == 2
    assert body == {"result": 7, "same": True}


async def test_get_executor_without_setup_raises_a_clear_error() -> None:
    """get_executor in an app without setup raises RuntimeError naming the fix."""
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        with pytest.raises(RuntimeError) as raised:
            get_executor(request)
        return web.Response(text=str(raised.value))

    app.router.add_get("/", handler)
    async with _serving(app) as client:
        text = await (await client.get("/")).text()
    assert text == (
        "no microscheduler executor on this app: call microscheduler.aiohttp.setup(app) "
        "before the app starts"
    )
    with pytest.raises(RuntimeError, match=r"call microscheduler\.aiohttp\.setup\(app\)"):
        get_executor_from_app(app)


def test_get_executor_from_app_before_start_says_it_is_not_running_yet() -> None:
    """Before the app starts, get_executor_from_app explains the executor starts with it."""
    app = web.Application()
    setup(app)
    with pytest.raises(RuntimeError, match="the microscheduler executor is not running yet"):
        get_executor_from_app(app)


async def test_setup_refuses_a_second_call_a_started_app_and_bad_configuration() -> None:
    """setup() rejects a repeated call, a started app and bad arguments with clear errors."""
    app = web.Application()
    setup(app, 2)
    with pytest.raises(RuntimeError, match=r"setup\(\) was already called for this app"):
        setup(app)
    with pytest.raises(TypeError, match="config must be a WorkerConfig or a processor count"):
        setup(web.Application(), "2")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="processor count must be at least 1, got 0"):
        setup(web.Application(), 0)
    with pytest.raises(ValueError, match="drain_timeout cannot be negative, got -1"):
        setup(web.Application(), drain_timeout=-1)
    started = web.Application()
    async with _serving(started):
        with pytest.raises(RuntimeError, match="must be called before the app starts"):
            setup(started)


async def test_drain_timeout_bounds_how_long_cleanup_waits() -> None:
    """Work still running when drain_timeout expires is interrupted and its caller told so."""
    app = web.Application()
    setup(app, drain_timeout=0)
    started = asyncio.Event()
    never = asyncio.Event()

    async def hold(_resource: object, _state: object, _interrupt: object) -> None:
        started.set()
        await never.wait()

    async with _serving(app):
        task: Task[None] = Task(name="hold", compute=hold)
        handle = app[EXECUTOR_KEY].submit_nowait(task)
        await started.wait()
    with pytest.raises(ExecutorShutdownError, match="executor is shutdown"):
        await handle
    assert not never.is_set()


async def test_executor_is_shut_down_after_cleanup() -> None:
    """After the app's cleanup the executor refuses new work with ExecutorShutdownError."""
    app = web.Application()
    setup(app)
    async with _serving(app):
        executor: TaskExecutor = app[EXECUTOR_KEY]
        assert await executor.execute(Task(name="one", compute=lambda *_: 1)) == 1
    with pytest.raises(ExecutorShutdownError, match="executor is shutdown"):
        await executor.execute(Task(name="late", compute=lambda *_: 1))


async def test_docs_snippet_serves_its_endpoint() -> None:
    """The aiohttp snippet in docs/integrations.md runs and answers through its executor."""
    namespace: dict[str, Any] = {"__name__": "docs_snippet_aiohttp"}
    exec(compile(doc_snippet("aiohttp"), "docs/integrations.md:aiohttp", "exec"), namespace)
    app = namespace["create_app"]()
    async with _serving(app) as client:
        body = await (await client.get("/summary")).json()
        assert app[EXECUTOR_KEY].statistics().completed == 1
    assert body == {"summary": "a summary"}


async def test_the_example_ships_the_readmes_recommended_slice() -> None:
    """The aiohttp example's executor runs one processor with the min_background_slice the
    README recommends for a service sharing one model (the defaults thrash)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (recommended,) = set(re.findall(r"`min_background_slice=([\d.]+)`", readme))
    app = example.create_app()
    async with _serving(app):
        config = app[EXECUTOR_KEY].config
    assert config.min_background_slice == float(recommended)
    assert config.total_workers == 1
