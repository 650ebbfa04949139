"""actor_pool: one Ray actor per executor worker, killed when the executor shuts down."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import anyio
import ray
from ray.exceptions import RayActorError

from microscheduler import WorkerType
from microscheduler._logging import logger

__all__ = ("ActorPool", "actor_pool")


#: Seconds shutdown waits for a killed actor to be reported dead.
KILL_TIMEOUT = 10.0
_DEAD_POLL = 0.05  # between liveness probes of a killed actor


def actor_pool(
    actor_class: Any, *args: Any, options: Mapping[str, Any] | None = None, **kwargs: Any
) -> ActorPool:
    """Return a resource factory that gives each worker its own Ray actor.

    Pass it as ``WorkerConfig(resource_factory=actor_pool(Model, ...))``. When the executor
    starts, each worker gets ``actor_class.options(**options).remote(*args, **kwargs)``
    (started and ready) as its resource; when the executor shuts down the actor is killed
    and shutdown returns once Ray reports it dead.

    Ray restarts an actor that dies (``max_restarts=-1`` unless ``options`` says
    otherwise), so the run that was using it fails with
    :class:`~microscheduler.ray.RemoteActorError` and the worker's next run uses the
    restarted actor. A ``name`` in ``options`` gets ``-<worker_id>`` appended, so every
    worker's actor has its own name.

    Args:
        actor_class: A ``@ray.remote`` class.
        *args: Arguments for its constructor.
        options: Ray actor options, e.g. ``{"num_gpus": 1}``.
        **kwargs: Keyword arguments for its constructor.

    Raises:
        TypeError: ``actor_class`` is not a ``@ray.remote`` class.
    """
    if not callable(getattr(actor_class, "options", None)) or not hasattr(actor_class, "remote"):
        raise TypeError(f"actor_pool() needs a @ray.remote class, got {actor_class!r}")
    return ActorPool(actor_class, args, kwargs, dict(options or {}))


class ActorPool:
    """The resource factory :func:`actor_pool` returns (picklable, so a served executor
    can carry it to the scheduler actor)."""

    __module__ = "microscheduler.ray"
    __slots__ = ("_actor_class", "_args", "_kwargs", "_options")

    def __init__(
        self,
        actor_class: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        self._actor_class = actor_class
        self._args = args
        self._kwargs = kwargs
        self._options = {"max_restarts": -1, **options}

    def __call__(self, worker_id: int, worker_type: WorkerType) -> _PooledActor:
        options = dict(self._options)
        if "name" in options:
            options["name"] = f"{options['name']}-{worker_id}"
        return _PooledActor(self._actor_class, self._args, self._kwargs, options)

    def __repr__(self) -> str:
        return f"<ActorPool {self._actor_class!r} options={self._options!r}>"


class _PooledActor:
    """One worker's actor, alive from ``__aenter__`` to ``__aexit__``."""

    __slots__ = ("_actor", "_actor_class", "_args", "_kwargs", "_options")

    def __init__(
        self,
        actor_class: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        self._actor_class = actor_class
        self._args = args
        self._kwargs = kwargs
        self._options = options
        self._actor: Any = None

    async def __aenter__(self) -> Any:
        actor = self._actor_class.options(**self._options).remote(*self._args, **self._kwargs)
        try:
            await actor.__ray_ready__.remote()
        except BaseException:
            ray.kill(actor, no_restart=True)
            raise
        self._actor = actor
        return actor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        actor, self._actor = self._actor, None
        ray.kill(actor, no_restart=True)
        # ray.kill only asks; wait until Ray reports the actor dead, so that when the
        # executor's shutdown returns the actor (and its name) is gone.
        if not await until_dead(actor, KILL_TIMEOUT):
            logger.warning("actor_not_dead_after_kill", actor=repr(actor), waited_s=KILL_TIMEOUT)


async def until_dead(actor: Any, timeout: float) -> bool:
    """Wait (shielded, at most ``timeout`` seconds) until Ray reports a killed actor dead;
    False if it did not within ``timeout``."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(timeout) as waiting:
        while True:
            try:
                await actor.__ray_ready__.remote()
            except RayActorError:
                return True
            await asyncio.sleep(_DEAD_POLL)
    return not waiting.cancelled_caught
