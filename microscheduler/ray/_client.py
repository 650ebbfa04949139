"""serve() and connect(): submit to an executor hosted in a named, detached Ray actor."""

from __future__ import annotations

import asyncio
import uuid
from types import TracebackType
from typing import Any, TypeVar

import anyio
import ray
from ray.exceptions import RayActorError, RayTaskError

from microscheduler import ExecutorStatistics, Priority, Task, WorkerConfig

from ._errors import SchedulerUnavailableError, scheduler_gone
from ._handle import RemoteTaskHandle, rebuild
from ._pool import until_dead
from ._server import SchedulerActor

__all__ = ("DEFAULT_NAMESPACE", "SchedulerClient", "connect", "serve")

T = TypeVar("T")

#: The Ray namespace of scheduler actors when ``serve``/``connect`` name none. Fixed, not
#: the job's: a driver that calls ``ray.init()`` without a namespace gets an anonymous one
#: of its own, where no other driver would find the scheduler.
DEFAULT_NAMESPACE = "microscheduler"

#: Seconds ``shutdown``/``close`` wait for Ray to finish with the actors they end.
WIND_DOWN_TIMEOUT = 10.0
_actor_classes: dict[str, Any] = {}


def _remote_class(name: str) -> Any:
    """The Ray actor class for the scheduler or the guardian, made once per process."""
    if not _actor_classes:
        _actor_classes["scheduler"] = ray.remote(SchedulerActor)
        _actor_classes["guardian"] = ray.remote(_Guardian)
    return _actor_classes[name]


class _Guardian:
    """Lives as long as the client's process (Ray ends an actor with its owner); the
    scheduler actor awaits :meth:`hold`, which only its death ends."""

    async def hold(self) -> None:
        await asyncio.Event().wait()


async def serve(
    name: str,
    config: WorkerConfig,
    *,
    namespace: str | None = None,
    actor_options: dict[str, Any] | None = None,
) -> SchedulerClient:
    """Start a :class:`~microscheduler.TaskExecutor` in a named, detached Ray actor.

    The executor (its workers, lanes and resources, e.g. an :func:`actor_pool`) lives in
    the scheduler actor until :meth:`SchedulerClient.shutdown`; any process of the cluster
    reaches it with :func:`connect`. Ray must be initialised (``ray.init``) first.

    Args:
        name: The actor's name, unique in its namespace.
        config: The executor's configuration; it travels to the actor through Ray's
            serializer, resource factory included.
        namespace: The Ray namespace of the actor; ``"microscheduler"`` by default,
            whatever namespace the calling job has, so that ``connect(name)`` from any
            driver finds it.
        actor_options: Extra Ray options for the scheduler actor (``max_concurrency``, the
            number of calls it holds at once, defaults to 10,000).

    Returns:
        A client connected to the new scheduler.

    Raises:
        ValueError: A scheduler (or another actor) with this name already exists.
        Exception: Whatever the executor's start raised (a resource factory's error).
    """
    if not isinstance(config, WorkerConfig):
        raise TypeError(f"serve() needs a WorkerConfig, got {config!r}")
    namespace = _namespace(namespace)
    options: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "lifetime": "detached",
        "max_concurrency": 10_000,
        "num_cpus": 0,
        "max_restarts": 0,
        **(actor_options or {}),
    }
    try:
        actor = _remote_class("scheduler").options(**options).remote()
    except ValueError as exc:
        raise ValueError(
            f"a scheduler actor named {name!r} already exists in Ray namespace "
            f"{namespace!r}; connect({name!r}) to it, or shut it down first"
        ) from exc
    try:
        failure = await actor.start.remote(config)
    except BaseException:
        ray.kill(actor, no_restart=True)
        raise
    if failure is not None:
        ray.kill(actor, no_restart=True)
        await until_dead(actor, WIND_DOWN_TIMEOUT)  # the name is free again when serve() raises
        raise rebuild(failure)
    return await connect(name, namespace=namespace)


async def connect(name: str, *, namespace: str | None = None) -> SchedulerClient:
    """Connect to the scheduler actor :func:`serve` started under ``name``.

    The client watches over its calls: if this process exits, the scheduler cancels every
    call it still has (a small guardian actor, owned by this process, dies with it).

    Args:
        name: The scheduler actor's name.
        namespace: The Ray namespace to look in; ``"microscheduler"`` by default, as
            for :func:`serve` (so any driver of the cluster finds it, whatever namespace
            its own job has).

    Raises:
        SchedulerUnavailableError: No scheduler actor has this name in that namespace (the
            message names the namespace searched).
    """
    namespace = _namespace(namespace)
    try:
        actor = ray.get_actor(name, namespace=namespace)
    except ValueError as exc:
        raise SchedulerUnavailableError(
            f"no scheduler actor named {name!r} in Ray namespace {namespace!r}: start one "
            f"with serve({name!r}, config) (serve and connect must name the same namespace)"
        ) from exc
    guardian = _remote_class("guardian").options(num_cpus=0, max_restarts=0).remote()
    client_id = uuid.uuid4().hex
    try:
        await actor.attach.remote(client_id, guardian)
    except RayActorError as exc:
        ray.kill(guardian, no_restart=True)
        raise scheduler_gone(name, exc) from exc
    return SchedulerClient(name, actor, client_id, guardian)


def _namespace(namespace: str | None) -> str:
    if namespace is None:
        return DEFAULT_NAMESPACE
    if not isinstance(namespace, str) or not namespace:
        raise ValueError(f"namespace must be a non-empty str or None, got {namespace!r}")
    return namespace


class SchedulerClient:
    """Submits tasks to a scheduler actor, as a :class:`~microscheduler.TaskExecutor` would.

    Made by :func:`serve` and :func:`connect`. ``execute`` and ``submit`` have the
    executor's signatures and semantics: lanes, preemption, timeouts, cancellation and
    exactly one outcome per call hold for every client of the scheduler, whatever process
    it is in. Tasks, states, results and exceptions travel through Ray's serializer.

    Differences from the executor: ``statistics()`` is a coroutine (it asks the actor),
    there is no ``submit_nowait``, and if the scheduler actor dies every call and every
    waiting handle raises :class:`~microscheduler.ray.SchedulerUnavailableError`.
    """

    __module__ = "microscheduler.ray"

    def __init__(self, name: str, actor: Any, client_id: str, guardian: Any) -> None:
        self._name = name
        self._actor = actor
        self._client_id = client_id
        self._guardian = guardian
        self._handles: set[RemoteTaskHandle[Any]] = set()
        self._closed = False

    @property
    def name(self) -> str:
        """The scheduler actor's name."""
        return self._name

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SchedulerClient {self._name!r} {state} calls={len(self._handles)}>"

    async def submit(
        self, task: Task[T], priority: Priority | int | None = None, *, timeout: float | None = None
    ) -> RemoteTaskHandle[T]:
        """Queue ``task`` in the scheduler and return its handle once it is admitted.

        Arguments, errors and the meaning of ``timeout`` are those of
        :meth:`microscheduler.TaskExecutor.submit`.

        Raises:
            TypeError: ``task`` is not a Task, or it cannot be serialised (its compute or
                state holds a lock, a socket, ...), or the scheduler actor cannot load it
                (its compute lives in a module the cluster's workers cannot import).
            SchedulerUnavailableError: The scheduler actor is gone.
        """
        if self._closed:
            raise RuntimeError("this SchedulerClient is closed; connect() again")
        if not isinstance(task, Task):
            raise TypeError(f"expected a Task, got {task!r}")
        if priority is not None and not isinstance(priority, Priority):
            raise ValueError(
                f"priority must be a Priority (Priority.UI, Priority.LAST_EFFORT or "
                f"Priority.BACKGROUND), got {priority!r}"
            )
        call_id = uuid.uuid4().hex
        try:
            stream = self._actor.run.options(num_returns="streaming").remote(
                self._client_id, call_id, task, priority, timeout
            )
        except TypeError as exc:
            reason = str(exc).splitlines()[0]
            raise TypeError(
                f"task {task.name!r} cannot be sent to the scheduler actor: {reason}"
            ) from exc
        try:
            _, error = await (await stream.__anext__())
        except RayActorError as exc:
            raise scheduler_gone(self._name, exc) from exc
        except RayTaskError as exc:
            # The call failed before it could admit the task: in practice the actor could
            # not unpickle it (a compute defined in a module the cluster cannot import).
            lines = str(exc.cause if exc.cause is not None else exc).strip().splitlines()
            raise TypeError(
                f"task {task.name!r} could not be loaded in the scheduler actor: {lines[-1]}; "
                f"define its compute in a module the cluster's workers can import"
            ) from exc
        except BaseException:
            ray.cancel(stream)  # the caller gave up while the task was being admitted
            raise
        if error is not None:
            raise error
        lane = task.priority if priority is None else priority
        handle = RemoteTaskHandle(self._name, stream, task, lane, self._handles.discard)
        self._handles.add(handle)
        return handle

    async def execute(
        self, task: Task[T], priority: Priority | int | None = None, *, timeout: float | None = None
    ) -> T:
        """Queue ``task`` in the scheduler and return its result.

        Semantics are those of :meth:`microscheduler.TaskExecutor.execute`: the task's
        own exception is re-raised (its type and message; Ray does not keep tracebacks),
        and cancelling the caller cancels the execution.

        Raises:
            SchedulerUnavailableError: The scheduler actor is gone (or died meanwhile).
        """
        handle = await self.submit(task, priority, timeout=timeout)
        return await handle

    async def statistics(self) -> ExecutorStatistics:
        """The scheduler's statistics (all clients together)."""
        try:
            stats: ExecutorStatistics = await self._actor.statistics.remote()
        except RayActorError as exc:
            raise scheduler_gone(self._name, exc) from exc
        return stats

    async def shutdown(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Shut the scheduler down for every client and remove its actor.

        ``drain`` and ``timeout`` are those of :meth:`microscheduler.TaskExecutor.shutdown`.
        When it returns the executor has shut down (its actor pool killed) and the
        scheduler actor is dead, so its name is free again. Handles of other clients get
        ``ExecutorShutdownError``, or ``SchedulerUnavailableError`` if the actor was gone
        before their outcome reached them.
        """
        try:
            await self._actor.shutdown.remote(drain, timeout)
        except RayActorError as exc:
            raise scheduler_gone(self._name, exc) from exc
        finally:
            await self._wind_down(kill_scheduler=True)

    async def close(self) -> None:
        """Disconnect: cancel this client's calls still in the scheduler; idempotent."""
        if self._closed:
            return
        try:
            await self._actor.detach.remote(self._client_id)
        except RayActorError:
            pass  # the scheduler is gone: it holds nothing of ours
        await self._wind_down(kill_scheduler=False)

    async def _wind_down(self, *, kill_scheduler: bool) -> None:
        self._closed = True
        followers = [handle._follower for handle in self._handles]
        with anyio.CancelScope(shield=True), anyio.move_on_after(WIND_DOWN_TIMEOUT):
            if followers:
                await asyncio.wait(followers)
        ray.kill(self._guardian, no_restart=True)
        if kill_scheduler:
            ray.kill(self._actor, no_restart=True)
            await until_dead(self._actor, WIND_DOWN_TIMEOUT)

    async def __aenter__(self) -> SchedulerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
