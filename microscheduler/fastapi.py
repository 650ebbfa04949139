"""FastAPI and Starlette integration (install the ``fastapi`` extra).

Give the app an executor for its whole lifetime with :func:`lifespan`, and reach it from
handlers with :func:`get_executor` (a dependency) or ``request.state.executor``::

    from fastapi import FastAPI
    from microscheduler import Priority, Task
    from microscheduler.fastapi import ExecutorDep, lifespan

    app = FastAPI(lifespan=lifespan(2))


    @app.get("/answer")
    async def answer(executor: ExecutorDep) -> dict[str, int]:
        task = Task(name="answer", compute=lambda *_: 42, priority=Priority.UI)
        return {"answer": await executor.execute(task)}

The executor is started before the app serves its first request and shut down, draining the
work still queued or running for at most ``drain_timeout`` seconds, when the app stops. The
core package never imports this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, TypedDict

try:
    from fastapi import Depends
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "microscheduler.fastapi needs FastAPI: pip install 'microscheduler[fastapi]'"
    ) from exc

from microscheduler import ConfigError, TaskExecutor, WorkerConfig

__all__ = ("ExecutorDep", "ExecutorState", "get_executor", "lifespan")

_NO_EXECUTOR = (
    "no microscheduler executor in the lifespan state: create the app with "
    "FastAPI(lifespan=microscheduler.fastapi.lifespan(...)), or enter that lifespan inside "
    "your own and yield its state"
)


class ExecutorState(TypedDict):
    """The lifespan state yielded by :func:`lifespan`.

    Starlette copies it into every request, so handlers read ``request.state.executor``.
    When you nest :func:`lifespan` in your own lifespan, yield this mapping (merged with your
    own keys) so the executor stays reachable.
    """

    executor: TaskExecutor


def lifespan(
    config: WorkerConfig | int = 1,
    *,
    drain_timeout: float | None = 10.0,
    logger: Any = None,
) -> Callable[[Starlette], AbstractAsyncContextManager[ExecutorState]]:
    """Build a lifespan that runs a :class:`~microscheduler.TaskExecutor` for an app.

    Pass the result as ``FastAPI(lifespan=...)`` (or ``Starlette(lifespan=...)``), or enter
    it from your own lifespan with ``async with lifespan(...)(app) as state:`` and yield
    ``state`` together with your own keys. Every start of the app gets a fresh executor.

    Args:
        config: A :class:`~microscheduler.WorkerConfig`, or a processor count as taken by
            :class:`~microscheduler.TaskExecutor` (``1`` is single-processor mode).
        drain_timeout: Seconds that work still queued or running at shutdown is given to
            finish before it is cancelled; ``None`` waits for all of it.
        logger: A structlog logger for the executor; the library's own by default.

    Returns:
        A lifespan function. While the app runs, its state holds the started executor under
        ``"executor"``.

    Raises:
        TypeError: If ``config`` is neither a ``WorkerConfig`` nor an ``int``.
        ConfigError: If ``config`` is a processor count below 1.
        ValueError: If ``drain_timeout`` is negative.
    """
    _check_config(config)
    if drain_timeout is not None and drain_timeout < 0:
        raise ValueError(f"drain_timeout cannot be negative, got {drain_timeout}")

    @contextlib.asynccontextmanager
    async def executor_lifespan(app: Starlette) -> AsyncIterator[ExecutorState]:
        executor = TaskExecutor(config, logger=logger)  # an int or a WorkerConfig
        await executor.start()
        try:
            yield {"executor": executor}
        except BaseException:
            # The app is failing, not stopping: do not hold it up to finish background work.
            await executor.shutdown()
            raise
        await executor.shutdown(drain=True, timeout=drain_timeout)

    return executor_lifespan


def get_executor(conn: HTTPConnection) -> TaskExecutor:
    """Return the app's executor; use it as ``Depends(get_executor)`` or via ``ExecutorDep``.

    Works for HTTP and WebSocket endpoints alike.

    Args:
        conn: The request or WebSocket connection (FastAPI supplies it).

    Returns:
        The executor started by :func:`lifespan`.

    Raises:
        RuntimeError: If the app's lifespan state holds no executor, that is, the app was
            not created with (or its lifespan does not yield the state of) :func:`lifespan`.
    """
    state = conn.scope.get("state")
    executor = state.get("executor") if state is not None else None
    if not isinstance(executor, TaskExecutor):
        raise RuntimeError(_NO_EXECUTOR)
    return executor


ExecutorDep = Annotated[TaskExecutor, Depends(get_executor)]
"""Endpoint parameter type that receives the app's executor: ``executor: ExecutorDep``."""


def _check_config(config: object) -> None:
    if isinstance(config, bool) or not isinstance(config, WorkerConfig | int):
        raise TypeError(f"config must be a WorkerConfig or a processor count (int), got {config!r}")
    if isinstance(config, int) and config < 1:
        raise ConfigError(f"processor count must be at least 1, got {config}")
