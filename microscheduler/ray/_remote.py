"""run_remote: drive a remote async-generator actor method as one interruptible run."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any, NoReturn

import anyio
import ray
from ray.exceptions import (
    ActorUnavailableError,
    RayActorError,
    RayTaskError,
    TaskCancelledError,
)

from microscheduler import InterruptContext, TaskInterruptedError
from microscheduler._logging import logger

from ._errors import RemoteActorError

__all__ = ("Checkpoint", "run_remote")


#: Seconds an interrupted remote call is given to stop after ``ray.cancel``.
DEFAULT_CANCEL_TIMEOUT = 10.0
_RESTART_POLL = 0.05  # between probes of an actor that Ray is restarting


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """A snapshot yielded by a remote method driven by :func:`run_remote`.

    The method yields ``Checkpoint(data)`` whenever it has progress worth keeping; the data
    becomes the task's latest snapshot, and a rerun's call receives it as ``snapshot=``.

    Attributes:
        data: The snapshot, as bytes.
    """

    __module__ = "microscheduler.ray"

    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise TypeError(f"Checkpoint data must be bytes, got {type(self.data).__name__}")


async def run_remote(
    interrupt: InterruptContext,
    method: Any,
    *args: Any,
    ray_cancel_timeout: float = DEFAULT_CANCEL_TIMEOUT,
    **kwargs: Any,
) -> Any:
    """Run the async-generator actor ``method`` as a Ray streaming call, interruptibly.

    The method is called as ``method(*args, snapshot=..., **kwargs)``, where ``snapshot``
    is the task's latest snapshot (``interrupt.snapshot``: bytes, or None on a fresh
    start). Each :class:`Checkpoint` it yields is saved with ``interrupt.save_snapshot``; the
    last other value it yields is the result (None if it yields none).

    When the run is interrupted (preempted, cancelled, timed out or shut down), the remote
    call is cancelled with ``ray.cancel`` (the method sees ``asyncio.CancelledError`` where
    it awaits) and awaited until it has stopped, at most ``ray_cancel_timeout`` seconds, so
    the actor is free before the worker takes its next task. Checkpoints yielded before the
    cancellation reached the method are still saved; one yielded after it (in an ``except
    CancelledError`` block) is not delivered, because Ray ends the call at that ``yield`` —
    so yield checkpoints as the work goes.

    Args:
        interrupt: The run's :class:`~microscheduler.InterruptContext`.
        method: An async-generator method of a Ray actor handle, e.g. ``actor.generate``.
        *args: Positional arguments for the method.
        ray_cancel_timeout: Seconds to wait for an interrupted call to stop.
        **kwargs: Keyword arguments for the method (``snapshot`` is passed by this call).

    Returns:
        The last value the method yielded that was not a :class:`Checkpoint`.

    Raises:
        RemoteActorError: The actor died or restarted during the call (Ray's error is the
            ``__cause__``).
        TaskInterruptedError: The remote call was cancelled because the run was interrupted
            (what the executor then does with the run is decided by the interrupt's reason).
        Exception: The method's own exception, unchanged (Ray's error is the ``__cause__``).
    """
    if "snapshot" in kwargs:
        raise TypeError("run_remote() passes snapshot= to the method itself; do not pass it")
    options = getattr(method, "options", None)
    if options is None:
        raise TypeError(
            f"run_remote() needs a Ray actor method such as actor.generate, got {method!r}"
        )
    stream = options(num_returns="streaming").remote(*args, snapshot=interrupt.snapshot, **kwargs)
    try:
        return await _RemoteCall(stream, interrupt, ray_cancel_timeout).run()
    except RemoteActorError:
        # Let Ray finish restarting the actor before this run ends, so that the worker's
        # next run reaches the restarted actor instead of failing on the restart too.
        # (An ActorMethod keeps its handle in ``_actor``; without one there is no wait.)
        await _until_reachable(getattr(method, "_actor", None), ray_cancel_timeout)
        raise


class _RemoteCall:
    """One streaming call: its items, and how it is stopped when the run is interrupted."""

    __slots__ = ("_interrupt", "_result", "_stream", "_timeout")

    def __init__(self, stream: Any, interrupt: InterruptContext, timeout: float) -> None:
        self._stream = stream
        self._interrupt = interrupt
        self._timeout = timeout
        self._result: Any = None

    async def _next(self) -> Any:
        ref = await self._stream.__anext__()
        return await ref

    async def _take(self, value: Any) -> None:
        if isinstance(value, Checkpoint):
            await self._interrupt.save_snapshot(value.data)
        else:
            self._result = value

    async def run(self) -> Any:
        interrupted = asyncio.ensure_future(self._interrupt.wait())
        try:
            while True:
                step = asyncio.ensure_future(self._next())
                try:
                    await asyncio.wait((step, interrupted), return_when=asyncio.FIRST_COMPLETED)
                except BaseException:
                    # The run itself is being cancelled (its interrupt, at once or after
                    # the grace): stop the remote call, then let that cancellation go on
                    # unchanged, whatever the stopping call ended with.
                    with contextlib.suppress(Exception):
                        await self._stop(step)
                    raise
                if not step.done():
                    return await self._stop(step)
                try:
                    value = step.result()
                except StopAsyncIteration:
                    return self._result
                except Exception as exc:
                    _raise_translated(exc)
                await self._take(value)
        finally:
            interrupted.cancel()

    async def _stop(self, step: asyncio.Future[Any]) -> Any:
        """Cancel the remote call and wait, shielded and bounded, until it has ended.

        Returns the result if the call finished by itself meanwhile; raises
        ``TaskInterruptedError`` if it was stopped.
        """
        try:
            ray.cancel(self._stream)
        except Exception as exc:  # Ray shut down under us: there is nothing left to stop
            logger.warning("remote_cancel_failed", error=repr(exc))
            step.cancel()
            raise TaskInterruptedError("remote call could not be cancelled") from exc
        error: Exception | None = None
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout) as waiting:
            while True:
                try:
                    value = await step
                except StopAsyncIteration:
                    return self._result
                except Exception as exc:
                    error = exc
                    break
                await self._take(value)
                step = asyncio.ensure_future(self._next())
        if waiting.cancelled_caught:
            step.cancel()
            logger.warning("remote_call_not_stopped", waited_s=self._timeout)
        reason = self._interrupt.reason or "cancelled"
        if error is not None and not isinstance(error, TaskCancelledError):
            _raise_translated(error)
        raise TaskInterruptedError(f"remote call stopped: the run was interrupted ({reason})")


async def _until_reachable(actor: Any, timeout: float) -> None:
    """Wait, at most ``timeout`` seconds, until ``actor`` answers or is dead for good."""
    if actor is None or not hasattr(actor, "__ray_ready__"):
        return
    with anyio.move_on_after(timeout):
        while True:
            try:
                await actor.__ray_ready__.remote()
            except ActorUnavailableError:
                await asyncio.sleep(_RESTART_POLL)
            except RayActorError:
                return  # dead for good (no restarts left)
            else:
                return


def _raise_translated(error: Exception) -> NoReturn:
    """Raise what the caller sees for a failed remote call, with Ray's error as the cause."""
    if isinstance(error, RayActorError):
        raise RemoteActorError(f"the actor running the remote call died: {error}") from error
    if isinstance(error, TaskCancelledError):
        raise TaskInterruptedError("remote call was cancelled outside this run") from error
    if isinstance(error, RayTaskError) and isinstance(error.cause, Exception):
        raise error.cause from error  # the method's own exception
    raise error
