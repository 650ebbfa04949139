"""aiohttp integration (install the ``aiohttp`` extra).

:func:`setup` gives an :class:`aiohttp.web.Application` an executor that lives exactly as
long as the app: it is registered in ``app.cleanup_ctx``, so it starts with the app's startup
signals and is shut down, draining its work for at most ``drain_timeout`` seconds, at cleanup.
Handlers reach it with :func:`get_executor`; code holding the app uses
:func:`get_executor_from_app` or ``app[EXECUTOR_KEY]``::

    try:
    from aiohttp import web
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "microscheduler.aiohttp needs aiohttp: pip install 'microscheduler[aiohttp]'"
    ) from exc
    from microscheduler import Priority, Task
    from microscheduler.aiohttp import get_executor, setup


    async def answer(request: web.Request) -> web.Response:
        task = Task(name="answer", compute=lambda *_: 42, priority=Priority.UI)
        return web.json_response({"answer": await get_executor(request).execute(task)})


    app = web.Application()
    app.router.add_get("/answer", answer)
    setup(app, 2)
    web.run_app(app)

The core package never imports this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

try:
    from aiohttp import web
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "microscheduler.aiohttp needs aiohttp: pip install 'microscheduler[aiohttp]'"
    ) from exc

from microscheduler import ConfigError, TaskExecutor, WorkerConfig

__all__ = ("EXECUTOR_KEY", "get_executor", "get_executor_from_app", "setup")

EXECUTOR_KEY: web.AppKey[TaskExecutor] = web.AppKey("executor", TaskExecutor)
"""The typed app key under which the running executor is stored."""


@dataclass(frozen=True, slots=True)
class _Settings:
    config: WorkerConfig | int
    drain_timeout: float | None
    logger: Any


_SETTINGS_KEY: web.AppKey[_Settings] = web.AppKey("settings", _Settings)

_NO_SETUP = (
    "no microscheduler executor on this app: call microscheduler.aiohttp.setup(app) "
    "before the app starts"
)
_NOT_STARTED = (
    "the microscheduler executor is not running yet: it starts with the app "
    "(through app.cleanup_ctx), so reach it from handlers or startup code that runs "
    "after microscheduler.aiohttp.setup(app)'s entry"
)


def setup(
    app: web.Application,
    config: WorkerConfig | int = 1,
    *,
    drain_timeout: float | None = 10.0,
    logger: Any = None,
) -> None:
    """Run a :class:`~microscheduler.TaskExecutor` for the lifetime of ``app``.

    Appends a context to ``app.cleanup_ctx`` that, each time the app starts, builds and starts
    a fresh executor and stores it under :data:`EXECUTOR_KEY`, and at cleanup shuts it down
    with ``drain=True``. Cleanup contexts run in the order they were added, so setup
    contexts added after this call can already use the executor, and it is still running
    while theirs are cleaned up.

    Args:
        app: The application; it must not have started yet.
        config: A :class:`~microscheduler.WorkerConfig`, or a processor count as taken by
            :class:`~microscheduler.TaskExecutor` (``1`` is single-processor mode).
        drain_timeout: Seconds that work still queued or running at cleanup is given to
            finish before it is cancelled; ``None`` waits for all of it.
        logger: A structlog logger for the executor; the library's own by default.

    Raises:
        TypeError: If ``config`` is neither a ``WorkerConfig`` nor an ``int``.
        ConfigError: If ``config`` is a processor count below 1.
        ValueError: If ``drain_timeout`` is negative.
        RuntimeError: If ``setup`` was already called for ``app``, or ``app`` has started.
    """
    if isinstance(config, bool) or not isinstance(config, WorkerConfig | int):
        raise TypeError(f"config must be a WorkerConfig or a processor count (int), got {config!r}")
    if isinstance(config, int) and config < 1:
        raise ConfigError(f"processor count must be at least 1, got {config}")
    if drain_timeout is not None and drain_timeout < 0:
        raise ValueError(f"drain_timeout cannot be negative, got {drain_timeout}")
    if _SETTINGS_KEY in app:
        raise RuntimeError("microscheduler.aiohttp.setup() was already called for this app")
    if app.frozen or app.pre_frozen:
        raise RuntimeError(
            "microscheduler.aiohttp.setup() must be called before the app starts "
            "(or is added as a sub-application)"
        )
    app[_SETTINGS_KEY] = _Settings(config, drain_timeout, logger)
    app.cleanup_ctx.append(_executor_context)


def get_executor(request: web.Request) -> TaskExecutor:
    """Return the executor of the app serving ``request``.

    Looks through the request's app and its parents (``request.config_dict``), so handlers of
    a sub-application reach an executor set up on the main app.

    Args:
        request: The request being handled.

    Returns:
        The running executor.

    Raises:
        RuntimeError: If :func:`setup` was not called for the app (or a parent app).
    """
    executor = request.config_dict.get(EXECUTOR_KEY)
    if executor is None:
        raise RuntimeError(_NOT_STARTED if _SETTINGS_KEY in request.config_dict else _NO_SETUP)
    return executor


def get_executor_from_app(app: web.Application) -> TaskExecutor:
    """Return the executor that :func:`setup` attached to ``app``.

    Args:
        app: The application.

    Returns:
        The executor of the app's current (or, after cleanup, last) run.

    Raises:
        RuntimeError: If :func:`setup` was not called for ``app``, or the app has not
            started yet.
    """
    executor = app.get(EXECUTOR_KEY)
    if executor is None:
        raise RuntimeError(_NOT_STARTED if _SETTINGS_KEY in app else _NO_SETUP)
    return executor


async def _executor_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[_SETTINGS_KEY]
    executor = TaskExecutor(settings.config, logger=settings.logger)  # an int or a WorkerConfig
    await executor.start()
    # Startup runs before aiohttp freezes the app, so storing the key here is allowed.
    app[EXECUTOR_KEY] = executor
    try:
        yield
    finally:
        await executor.shutdown(drain=True, timeout=settings.drain_timeout)
