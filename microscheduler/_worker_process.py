"""One child process of a worker, seen from the parent: start, pause, continue, end, reap.

The parent waits on the child without blocking the event loop: the loop watches the pipe
and the process's sentinel (``loop.add_reader``); where the loop cannot watch pipes
(Windows), a thread waits instead. Every way a child ends goes through :meth:`end` or
:meth:`kill`, which return only once the child's exit status is known, so it has been
reaped (by this process under ``spawn``, by the forkserver under ``forkserver``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import weakref
from multiprocessing.context import BaseContext
from typing import Any

from ._process_child import REASONS, child_main

__all__ = ("TERMINATE_GRACE", "WorkerProcess", "process_context")

#: Seconds a child has to exit after ``SIGTERM`` before it gets ``SIGKILL``.
TERMINATE_GRACE = 1.0

_WATCH_PIPES = sys.platform != "win32"  # a selector loop can watch a pipe's fd
_LIVE: weakref.WeakSet[WorkerProcess] = weakref.WeakSet()  # started, not yet reaped


@atexit.register
def _kill_leftovers() -> None:
    """Kill the children of executors that were never shut down, at interpreter exit.

    multiprocessing joins every child at exit, and an idle child waits for work from this
    process (a paused one, for its ``SIGCONT``): without this the interpreter would never
    exit. (Registered after multiprocessing's own exit handler, so it runs first.)
    """
    for child in list(_LIVE):
        with contextlib.suppress(Exception):
            child.process.kill()


def process_context() -> BaseContext:
    """``forkserver`` where it exists, else ``spawn``: never a plain ``fork`` of a process
    that runs an event loop and threads."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class WorkerProcess:
    """A child process serving process computes, and the parent's end of its pipe.

    Invariants:
        * At most one run at a time is in the child (its owner: the pool while idle, the
          run that follows it, or the paused execution that it belongs to).
        * ``paused`` is True exactly while the child has been sent ``SIGSTOP`` and not
          yet ``SIGCONT``.
    """

    __slots__ = (
        "__weakref__",
        "_child_conn",
        "conn",
        "exitcode",
        "flag",
        "paused",
        "pid",
        "process",
    )

    def __init__(self, context: BaseContext, initializer: object) -> None:
        self.conn, self._child_conn = context.Pipe(duplex=True)
        # One shared byte: the run's interrupt reason (0: none), read by the child.
        self.flag: Any = context.RawValue(ctypes.c_byte, 0)
        self.process: Any = context.Process(  # type: ignore[attr-defined]
            target=child_main,
            args=(self._child_conn, self.flag, initializer),
            name="microscheduler-process",
        )
        self.paused = False
        self.pid = 0  # known once started
        self.exitcode: int | None = None  # known once reaped

    def __repr__(self) -> str:
        state = "paused" if self.paused else "alive" if self.alive() else "ended"
        return f"<WorkerProcess pid={self.pid} {state}>"

    def start(self) -> None:
        """Start the child (blocking: run it in a thread)."""
        self.process.start()
        self.pid = self.process.pid
        _LIVE.add(self)
        self._child_conn.close()  # the child holds its end: EOF here once it is gone

    def alive(self) -> bool:
        """True while the child has not exited."""
        return self.exitcode is None and self.process.is_alive()

    def interrupt(self, reason: str) -> None:
        """Let the child's ``is_interrupted()`` see ``reason``."""
        self.flag.value = REASONS.index(reason)

    def pause(self) -> None:
        """Stop the child where it stands (``SIGSTOP``)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """Continue a paused child (``SIGCONT``), its run not interrupted."""
        self.flag.value = 0
        if self.paused:
            self.paused = False
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)

    def death(self) -> str:
        """How the (ended) child died, for a message: its exit code or its signal."""
        code = self.exitcode if self.exitcode is not None else self.process.exitcode
        if code is None:
            return "closed its pipe"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by signal {name} ({-code})"
        return f"exited with exit code {code}"

    async def readable(self, watch: asyncio.Future[Any] | None) -> None:
        """Return once the child sent something or exited, or ``watch`` is done."""
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()

        def ready(*_: object) -> None:
            if not wake.done():
                wake.set_result(None)

        if watch is not None:
            watch.add_done_callback(ready)
        fds = (self.conn.fileno(), self.process.sentinel)
        waiter: asyncio.Future[Any] | None = None
        if _WATCH_PIPES:
            for fd in fds:
                loop.add_reader(fd, ready)
        else:
            waiter = loop.run_in_executor(
                None, multiprocessing.connection.wait, [self.conn, self.process.sentinel]
            )
            waiter.add_done_callback(ready)
        try:
            await wake
        finally:
            if _WATCH_PIPES:
                for fd in fds:
                    loop.remove_reader(fd)
            if watch is not None:
                watch.remove_done_callback(ready)

    async def exited(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds (None: forever) for the child to exit."""
        if self.exitcode is not None or self.process.exitcode is not None:
            return True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        sentinel = self.process.sentinel

        def ready() -> None:
            if not done.done():
                done.set_result(None)

        if _WATCH_PIPES:
            loop.add_reader(sentinel, ready)
        else:
            waiter = loop.run_in_executor(None, multiprocessing.connection.wait, [sentinel])
            waiter.add_done_callback(lambda _: ready())
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            return False
        finally:
            if _WATCH_PIPES:
                loop.remove_reader(sentinel)
        return True

    async def kill(self) -> None:
        """``SIGKILL`` the child (a stopped one too) and reap it."""
        if self.exitcode is not None:
            return
        with contextlib.suppress(ProcessLookupError, OSError, ValueError):
            self.process.kill()
        self.paused = False
        await self.exited(None)
        self._reap()

    async def end(self, grace: float = TERMINATE_GRACE) -> None:
        """Terminate the child: ``SIGTERM`` (continuing it if paused, so that it acts on
        the signal), ``SIGKILL`` after ``grace`` seconds, then reap it."""
        if self.exitcode is None and self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError, OSError, ValueError):
                self.process.terminate()
            self.resume()
            if not await self.exited(grace):
                await self.kill()
                return
        self._reap()

    def _reap(self) -> None:
        if self.exitcode is not None:
            return  # reaped already
        self.process.join()  # the exit status is known: this returns at once
        self.exitcode = self.process.exitcode
        _LIVE.discard(self)
        self.conn.close()
        self.process.close()
