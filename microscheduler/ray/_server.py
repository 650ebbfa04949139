"""The scheduler actor: a TaskExecutor hosted in a named, detached async Ray actor.

Clients (:mod:`microscheduler.ray._client`) talk to it with two kinds of call (besides
``start``, ``statistics`` and ``shutdown``, which do what the executor's methods do):

* ``run(client, call, task, priority, timeout)`` — a streaming call that admits the task
  and then reports, in order: ``("admitted", error-or-None)``, ``("status", value)`` each
  time the execution's status changes, and last ``("outcome", outcome)``. The client that
  made this call waits on it; nothing else holds an execution. The client cancels a
  handle with ``ray.cancel`` on this call, and the execution goes with it.
* ``attach(client, guardian)`` / ``detach(client)`` — the client's guardian is a small
  actor that lives as long as the client's process; when it dies, every call that client
  still has is cancelled, so nothing is left running for a caller that is gone.

Outcomes travel as tuples: ``("result", value)``, ``("error", exception, cause)`` or
``("cancelled",)``, so the client re-raises the task's own exception type and message.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import ray.cloudpickle
from ray.exceptions import RayActorError

from microscheduler import (
    ExecutorNotStartedError,
    ExecutorStatistics,
    InterruptContext,
    Priority,
    Task,
    TaskExecutor,
    TaskHandle,
    WorkerConfig,
)
from microscheduler._logging import logger

__all__ = ("Outcome", "SchedulerActor")


Outcome = tuple[Any, ...]
_PLAIN = (type(None), bool, int, float, str, bytes)  # always serialisable


class _Call:
    """One execution admitted for a client."""

    __slots__ = ("changed", "client", "handle", "outcome", "waiter")

    def __init__(self, client: str) -> None:
        self.client = client
        self.handle: TaskHandle[Any] | None = None
        self.changed = asyncio.Event()
        self.outcome: Outcome | None = None
        self.waiter: asyncio.Task[None] | None = None


class _Tracked:
    """Wraps a task's async compute to report when its runs start and end."""

    __slots__ = ("call", "compute")

    def __init__(self, compute: Any, call: _Call) -> None:
        self.compute = compute
        self.call = call

    @property
    def __wrapped__(self) -> Any:  # a join compares the task's own compute
        return self.compute

    async def __call__(self, resource: object, state: object, interrupt: InterruptContext) -> Any:
        self.call.changed.set()
        try:
            return await self.compute(resource, state, interrupt)
        finally:
            # After the executor has settled the run (PREEMPTED, or an outcome).
            asyncio.get_running_loop().call_soon(self.call.changed.set)


class _TrackedSync:
    """Wraps a task's sync compute (run in a worker thread) likewise."""

    __slots__ = ("call", "compute", "loop")

    def __init__(self, compute: Any, call: _Call, loop: asyncio.AbstractEventLoop) -> None:
        self.compute = compute
        self.call = call
        self.loop = loop

    @property
    def __wrapped__(self) -> Any:  # a join compares the task's own compute
        return self.compute

    def __call__(self, resource: object, state: object, interrupt: InterruptContext) -> Any:
        self.loop.call_soon_threadsafe(self.call.changed.set)
        try:
            return self.compute(resource, state, interrupt)
        finally:
            self.loop.call_soon_threadsafe(self.call.changed.set)


def _portable(error: BaseException, task: str) -> BaseException:
    """``error`` if it pickles, else a RuntimeError that says what it was."""
    try:
        ray.cloudpickle.dumps(error)
    except Exception:
        return RuntimeError(f"task {task!r} raised {type(error).__name__}: {error}")
    return error


class SchedulerActor:
    """The actor's body (made a Ray actor class by ``serve``)."""

    def __init__(self) -> None:
        self._executor: TaskExecutor | None = None
        self._calls: dict[str, _Call] = {}
        self._guardians: dict[str, asyncio.Task[None]] = {}
        # Set once start() has ended: a client of another process may connect (the name
        # exists) while the executor is still starting, and its calls wait for that.
        self._ready = asyncio.Event()

    async def start(self, config: WorkerConfig) -> Outcome | None:
        """Build and start the executor; an error is returned, not raised (exact type)."""
        executor = TaskExecutor.from_config(config)
        try:
            await executor.start()
            self._executor = executor
        except Exception as exc:
            return ("error", _portable(exc, "start"), exc.__cause__)
        finally:
            self._ready.set()
        return None

    async def _started(self) -> TaskExecutor:
        await self._ready.wait()
        if self._executor is None:
            raise ExecutorNotStartedError("the scheduler actor's executor failed to start")
        return self._executor

    async def run(
        self,
        client: str,
        call_id: str,
        task: Task[Any],
        priority: Priority | int | None,
        timeout: float | None,
    ) -> AsyncIterator[tuple[str, Any]]:
        """Admit ``task`` and report its statuses and its outcome (see the module doc)."""
        try:
            executor = await self._started()
        except ExecutorNotStartedError as exc:
            yield ("admitted", exc)
            return
        call = _Call(client)
        loop = asyncio.get_running_loop()
        compute = _Tracked(task.compute, call) if task.is_async else None
        wrapped = dataclasses.replace(
            task, compute=compute or _TrackedSync(task.compute, call, loop)
        )
        self._calls[call_id] = call
        try:
            try:
                handle = await executor.submit(wrapped, priority, timeout=timeout)
            except Exception as exc:
                yield ("admitted", _portable(exc, task.name))
                return
            call.handle = handle
            call.waiter = loop.create_task(self._settle(call, handle, task.name))
            yield ("admitted", None)
            reported = None
            while call.outcome is None:
                status = handle.status
                if status is not reported:
                    reported = status
                    yield ("status", status.value)
                    continue
                call.changed.clear()
                await call.changed.wait()
            yield ("outcome", call.outcome)
        finally:
            # Reached when the outcome is delivered, and when this call is cancelled
            # (the client's Ray call was cancelled): the execution goes with it.
            if call.handle is not None and not call.handle.done():
                call.handle.cancel()
            del self._calls[call_id]

    async def _settle(self, call: _Call, handle: TaskHandle[Any], name: str) -> None:
        try:
            result = await handle
        except asyncio.CancelledError:
            call.outcome = ("cancelled",)
        except Exception as exc:
            call.outcome = ("error", _portable(exc, name), exc.__cause__)
        else:
            if not isinstance(result, _PLAIN):
                try:
                    ray.cloudpickle.dumps(result)
                except Exception as exc:
                    error = TypeError(f"the result of task {name!r} cannot be serialised: {exc}")
                    result, call.outcome = None, ("error", error, None)
            if call.outcome is None:
                call.outcome = ("result", result)
        call.changed.set()

    async def attach(self, client: str, guardian: Any) -> None:
        """Watch ``client``'s guardian actor: when it dies, cancel that client's calls."""
        loop = asyncio.get_running_loop()
        self._guardians[client] = loop.create_task(self._watch(client, guardian))

    async def _watch(self, client: str, guardian: Any) -> None:
        try:
            await guardian.hold.remote()
        except RayActorError:
            pass
        self._drop(client)

    async def detach(self, client: str) -> int:
        """Forget ``client``: cancel its calls and stop watching its guardian."""
        watcher = self._guardians.pop(client, None)
        if watcher is not None:
            watcher.cancel()
        return self._drop(client)

    def _drop(self, client: str) -> int:
        self._guardians.pop(client, None)
        dropped = 0
        for call in list(self._calls.values()):
            if call.client == client and call.handle is not None and call.handle.cancel():
                dropped += 1
        if dropped:
            logger.info("client_gone_calls_cancelled", client=client, cancelled=dropped)
        return dropped

    async def statistics(self) -> ExecutorStatistics:
        """The hosted executor's statistics."""
        return (await self._started()).statistics()

    async def shutdown(self, drain: bool, timeout: float | None) -> None:
        """Shut the hosted executor down (its actor pool included)."""
        for watcher in self._guardians.values():
            watcher.cancel()
        self._guardians.clear()
        if self._executor is not None:
            await self._executor.shutdown(drain=drain, timeout=timeout)
