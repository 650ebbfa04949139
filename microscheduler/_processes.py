"""Process computes: running ``Task(runs_in="process")`` in child processes, and pausing them.

:class:`ProcessPool` is the executor's one owner of child processes. A child is always in
exactly one place, so it serves at most one run and none leaks:

* **idle** in the pool (at most one per worker, plus one spare; a surplus child is ended),
* **running**, held by the :meth:`ProcessPool.run` that follows it for a worker,
* **paused**, in :attr:`ProcessPool.paused` under the preempted execution it belongs to.
  Whichever worker reruns that execution adopts the child and continues it; if the
  execution ends without a rerun (cancelled, timed out, shut down) the child is ended.

Preempting a run with ``process_preemption="pause"`` stops its child (``SIGSTOP``) and
ends the worker's wait at once; the rerun continues the child (``SIGCONT``) and waits for
the same run's result. With ``"restart"`` the child sees ``is_interrupted()``, is killed
when the run's grace ends, and the rerun starts from the last snapshot in a fresh child.
Cancel, timeouts and shutdown end the child (``SIGTERM``, then ``SIGKILL``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import anyio
import anyio.to_thread

from ._config import WorkerConfig
from ._context import NOT_RUN
from ._exceptions import WorkerProcessError
from ._execution import Execution
from ._interrupt import InterruptContext
from ._process_child import INIT_FAILED, RAISED, RETURNED, SNAPSHOT, UNPICKLABLE, UNREADABLE
from ._worker_process import WorkerProcess, process_context

__all__ = ("ProcessPool", "RemoteTraceback")


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a child process (its ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class ProcessPool:
    """The child processes of one executor's workers (see the module docstring)."""

    def __init__(self, config: WorkerConfig) -> None:
        self._initializer = config.process_initializer
        self._pause = config.process_preemption == "pause"
        self._grace = config.interrupt_grace
        # A child per worker, and one spare: in single-processor mode urgent process work
        # needs a second child while the preempted one is paused, every time.
        self._keep_idle = config.total_workers + 1
        self._context: Any = None  # made at the first process compute
        self._idle: list[WorkerProcess] = []
        self._children: set[WorkerProcess] = set()  # every child not yet reaped
        self._ending: set[asyncio.Task[None]] = set()
        self._closed = False
        self.paused: dict[Execution, WorkerProcess] = {}

    def __repr__(self) -> str:
        return (
            f"<ProcessPool children={len(self._children)} idle={len(self._idle)} "
            f"paused={len(self.paused)}>"
        )

    # -- a run -------------------------------------------------------------------------

    async def run(self, execution: Execution, ctx: InterruptContext, log: Any) -> Any:
        """Run ``execution``'s compute in a child, or continue its paused one.

        Returns the compute's result, or ``NOT_RUN`` when the run was interrupted (then
        ``ctx`` holds why); raises what the compute raised, or ``WorkerProcessError``.
        """
        child = self.paused.pop(execution, None)
        if child is not None:
            child.resume()
        else:
            child = await self._take()
            task = execution.task
            message = (
                task.compute,
                execution._task_state,
                ctx.attempt,
                task.initial_state is not None,
                task.name,
            )
            child.flag.value = 0
            try:
                child.conn.send(message)
            except OSError:
                pass  # the child is gone: found below as its death
            except Exception as exc:  # pickling: nothing was sent
                self._give_back(child)
                raise TypeError(
                    f"task {task.name!r}: its state cannot be pickled for its process "
                    f"compute: {exc}"
                ) from exc
        return await self._follow(child, execution, ctx, log)

    async def _follow(
        self, child: WorkerProcess, execution: Execution, ctx: InterruptContext, log: Any
    ) -> Any:
        """Relay the child's messages until its run ends or is interrupted.

        An interrupt reaches this wait as the cancellation of the run, except for a
        ``Task.timeout`` (the run is then awaited through an inner task, which only its
        context's signal reaches) and during an ``interrupt_grace``: only then does the
        run also watch that signal (a task per run that the common case does without).
        """
        watch: asyncio.Future[None] | None = None
        if self._grace or execution.task.timeout is not None:
            watch = asyncio.ensure_future(ctx.wait())
        try:
            while True:
                try:
                    await child.readable(watch)
                except asyncio.CancelledError:
                    with anyio.CancelScope(shield=True):
                        await self._interrupted(child, execution, ctx, log)
                    raise
                if watch is not None and watch.done():
                    watch = None
                    if ctx._reason == "preempted" and not self._pause:
                        # Restart: the child may see it and save; it is killed when
                        # the run's cancellation comes (now, or after interrupt_grace).
                        child.interrupt("preempted")
                    else:
                        with anyio.CancelScope(shield=True):
                            await self._interrupted(child, execution, ctx, log)
                        return NOT_RUN
                    continue
                done, value = await self._receive(child, execution, ctx, log)
                if done:
                    return value
        finally:
            if watch is not None:
                watch.cancel()

    async def _receive(
        self, child: WorkerProcess, execution: Execution, ctx: InterruptContext, log: Any
    ) -> tuple[bool, Any]:
        """Take one message from a readable child: (True, result) once its run is over."""
        name = execution.name
        try:
            if not child.conn.poll():
                raise EOFError  # only its sentinel is ready: it exited
            message = child.conn.recv()
        except (EOFError, OSError):
            await self._discard(child)
            raise WorkerProcessError(
                f"the worker process (pid {child.pid}) running task {name!r} {child.death()}"
            ) from None
        except Exception as exc:
            self._give_back(child)
            raise TypeError(
                f"task {name!r}: what its process compute returned or raised cannot be "
                f"unpickled here: {exc!r}"
            ) from exc
        kind = message[0]
        if kind == SNAPSHOT:
            await self._keep_snapshot(execution, ctx, message[1], log)
            return False, None
        if kind == INIT_FAILED:
            await self._discard(child)
            raise WorkerProcessError(
                f"process_initializer raised in the worker process (pid {child.pid}) for "
                f"task {name!r}: {message[1]}"
            )
        self._give_back(child)
        if kind == RETURNED:
            return True, message[1]
        if kind == RAISED:
            error: BaseException = message[1]
            error.__cause__ = RemoteTraceback(message[2])
            raise error
        if kind == UNPICKLABLE:
            what, description, text = message[1], message[2], message[3]
            raise TypeError(
                f"task {name!r}: the {what} of its process compute cannot be pickled "
                f"back to the executor: {description}"
            ) from (RemoteTraceback(text) if text else None)
        assert kind == UNREADABLE
        raise TypeError(
            f"task {name!r}: its process compute or state cannot be unpickled in the "
            f"worker process: {message[1]}"
        )

    @staticmethod
    async def _keep_snapshot(
        execution: Execution, ctx: InterruptContext, data: bytes, log: Any
    ) -> None:
        """A ``save_state_nowait`` from the child: keep it, and store it if keyed."""
        execution._keep_snapshot(data)  # (counted as a checkpoint of the run)
        with anyio.CancelScope(shield=True):
            try:
                await execution._persist_snapshot(data)
            except Exception as exc:  # the child cannot hear it; the snapshot stays in memory
                log.error("snapshot_save_failed", task=execution.name, exc_info=exc)

    async def _interrupted(
        self, child: WorkerProcess, execution: Execution, ctx: InterruptContext, log: Any
    ) -> None:
        """The run is interrupted (``ctx._reason``) or its worker cancelled: pause the
        child (a preemption in pause mode), or end it."""
        reason = ctx._reason
        if reason == "preempted" and self._pause:
            if execution not in self.paused:
                child.pause()
                self.paused[execution] = child
                # A paused run keeps all its progress, as a checkpoint would: it is not
                # one of the statistics' wasted runs.
                execution.count_checkpoint()
            return
        if reason == "preempted":
            # Restart: kill at once (the grace was the run's), then keep what it saved.
            await child.kill()
            self._children.discard(child)
            while True:
                try:
                    if not child.conn.poll():
                        break
                    message = child.conn.recv()
                except Exception:
                    break
                if message[0] == SNAPSHOT:
                    await self._keep_snapshot(execution, ctx, message[1], log)
            return
        child.interrupt(reason if reason is not None else "shutdown")
        await self._discard(child)

    # -- children ----------------------------------------------------------------------

    async def _take(self) -> WorkerProcess:
        """An idle child, or a new one (started in a thread: starting can block)."""
        while self._idle:
            child = self._idle.pop()
            if child.alive():
                return child
            self._end_later(child)  # it died while idle: reap it
        if self._context is None:
            self._context = process_context()
        child = WorkerProcess(self._context, self._initializer)
        self._children.add(child)
        try:
            await anyio.to_thread.run_sync(child.start)
        except asyncio.CancelledError:
            self._give_back(child)  # started by now (the thread ran to its end)
            raise
        except Exception as exc:
            self._children.discard(child)
            raise WorkerProcessError(f"could not start a worker process: {exc!r}") from exc
        return child

    def _give_back(self, child: WorkerProcess) -> None:
        if self._closed or len(self._idle) >= self._keep_idle:
            self._end_later(child)
        else:
            self._idle.append(child)

    async def _discard(self, child: WorkerProcess) -> None:
        with anyio.CancelScope(shield=True):  # a child once ending is always reaped
            await child.end()
        self._children.discard(child)

    def _end_later(self, child: WorkerProcess) -> None:
        task = asyncio.get_running_loop().create_task(self._discard(child))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    def release(self, execution: Execution) -> None:
        """``execution`` ended for good: end the paused child it still holds, if any."""
        child = self.paused.pop(execution, None)
        if child is not None:
            self._end_later(child)

    async def close(self) -> None:
        """End every child and return once all are reaped (the workers have stopped)."""
        self._closed = True
        for child in self._idle:
            self._end_later(child)
        self._idle.clear()
        for child in self.paused.values():
            self._end_later(child)
        self.paused.clear()
        while self._ending:
            # Remove what was awaited here rather than trust the done callbacks alone: an
            # eagerly started task (asyncio.eager_task_factory) may end before its callback
            # is added, and each pass must make progress.
            ending = tuple(self._ending)
            await asyncio.gather(*ending, return_exceptions=True)
            self._ending.difference_update(ending)
        for child in list(self._children):  # none should be left; never leave one behind
            with contextlib.suppress(Exception):
                await self._discard(child)
