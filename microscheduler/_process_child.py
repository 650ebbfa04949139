"""What runs inside a worker's child process: the pipe protocol and the child's interrupt.

A child serves one run at a time for whichever worker holds it. The parent sends::

    (compute, state, attempt, has_state, name)

and the child answers with any number of ``(SNAPSHOT, data)`` messages (each
``save_state_nowait``) and then exactly one of::

    (RETURNED, result)
    (RAISED, exception, traceback_text)
    (UNPICKLABLE, what, description, traceback_text)   the result or exception would not pickle
    (UNREADABLE, description)                          the run message would not unpickle

A child whose ``process_initializer`` raises sends ``(INIT_FAILED, description)`` and
exits. The parent tells a run why it is interrupted through one shared byte (``flag``),
which the child only reads; a paused child is simply stopped by a signal and never knows.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from ._cpython import leave_forkserver

__all__ = (
    "INIT_FAILED",
    "RAISED",
    "REASONS",
    "RETURNED",
    "SNAPSHOT",
    "UNPICKLABLE",
    "UNREADABLE",
    "ProcessInterrupt",
    "child_main",
)

SNAPSHOT = "snapshot"
RETURNED = "returned"
RAISED = "raised"
UNPICKLABLE = "unpicklable"
UNREADABLE = "unreadable"
INIT_FAILED = "init_failed"

#: The shared byte's values: 0 is "not interrupted", then each reason by its index.
REASONS: tuple[str | None, ...] = (None, "preempted", "cancelled", "timeout", "shutdown")


class ProcessInterrupt:
    """The ``interrupt`` argument of a process compute, inside its child process.

    It offers what a compute that runs without the event loop can use:
    :meth:`is_interrupted`, :attr:`reason`, :attr:`attempt` and :meth:`save_state_nowait`,
    whose snapshot goes to the parent (and, for a keyed task, on to the snapshot store).
    A paused run is not interrupted: it is stopped and later continued, and never sees it.
    """

    __slots__ = ("_active", "_attempt", "_conn", "_flag", "_has_state", "_name")

    def __init__(
        self, conn: Connection, flag: Any, attempt: int, has_state: bool, name: str
    ) -> None:
        self._conn = conn
        self._flag = flag
        self._attempt = attempt
        self._has_state = has_state
        self._name = name
        self._active = True

    def is_interrupted(self) -> bool:
        """True once the parent has asked this run to stop (cancel, timeout, shutdown,
        or a preemption with ``process_preemption="restart"``)."""
        return bool(self._flag.value)

    @property
    def reason(self) -> str | None:
        """None while the run is not interrupted; then why it was."""
        code: int = self._flag.value
        return REASONS[code]

    @property
    def attempt(self) -> int:
        """The run this call of the compute is: 1 on the first, 2 on a rerun, and so on.

        A paused run that is continued keeps the attempt it started with: the call
        never ended (the scheduler counts the continuation as a new attempt).
        """
        return self._attempt

    def save_state_nowait(self, state: Any) -> None:
        """Send a snapshot of ``state`` (``state.save()``) to the parent at once.

        A rerun of the task (``process_preemption="restart"``, or a new process for a
        keyed task) restores it into the task's state before it starts.

        Raises:
            TypeError: ``state`` has no ``save()``.
            ValueError: The task has no ``initial_state``.
            RuntimeError: The run has ended.
        """
        save = getattr(state, "save", None)
        if save is None or not callable(save):
            raise TypeError(f"save_state() needs a TaskState with save() -> bytes, got {state!r}")
        if not self._active:
            raise RuntimeError(
                f"save_state() called after run {self._attempt} of task {self._name!r} "
                f"ended; save only while the compute runs"
            )
        if not self._has_state:
            raise ValueError(
                f"save_state() in task {self._name!r}, which has no initial_state: nothing "
                f"would restore the snapshot on a rerun; pass Task(initial_state=...)"
            )
        data = save()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"save() must return bytes, got {type(data).__name__}")
        self._conn.send((SNAPSHOT, bytes(data)))

    def __repr__(self) -> str:
        reason = self.reason
        state = f"interrupted reason={reason}" if reason else "running"
        return f"<ProcessInterrupt {self._name!r} attempt={self._attempt} {state}>"


def child_main(conn: Connection, flag: Any, initializer: Any) -> None:
    """The child's whole life: build the resource, then serve runs until the pipe closes."""
    # Ctrl-C reaches the whole process group; the parent decides what ends a run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _leave_the_forkserver():
        # Only then: under spawn the parent "thread" PDEATHSIG watches would be the
        # executor's short-lived starter thread, not the executor.
        _die_with_parent()
    resource: object = None
    if initializer is not None:
        try:
            resource = initializer()
        except Exception as exc:
            conn.send((INIT_FAILED, f"{exc!r}\n{_format(exc)}"))
            return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent closed the pipe (or died): nothing more to serve
        except Exception as exc:  # its compute or state class does not import here
            conn.send((UNREADABLE, f"{exc!r}"))
            continue
        _serve(conn, flag, resource, message)


def _serve(conn: Connection, flag: Any, resource: object, message: Any) -> None:
    compute, state, attempt, has_state, name = message
    interrupt = ProcessInterrupt(conn, flag, attempt, has_state, name)
    try:
        result = compute(resource, state, interrupt)
    except Exception as exc:
        interrupt._active = False
        text = _format(exc)
        try:
            conn.send((RAISED, exc, text))
        except Exception as why:
            conn.send((UNPICKLABLE, "exception", f"{exc!r} ({why})", text))
        return
    interrupt._active = False
    try:
        conn.send((RETURNED, result))
    except Exception as why:
        conn.send((UNPICKLABLE, "result", f"{type(result).__name__} ({why})", ""))


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this child if the process that forked it dies.

    The child's parent is the forkserver, which exits with the executor's process (see
    :func:`_leave_the_forkserver`): a ``kill -9`` of the executor leaves no child running,
    or stopped, behind.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() == 1:  # the parent died before the request was made
            os._exit(1)


def _leave_the_forkserver() -> bool:
    """Let the forkserver exit when the executor's process dies, even while this child runs.

    Every child of a forkserver inherits the write end of the server's "alive" pipe, and
    the server exits only when all of them are closed. A child that kept it would keep the
    server alive after a ``kill -9`` of the executor, and so itself (through
    :func:`_die_with_parent`) running, or stopped, forever. This child starts no process
    through that server, so it closes its copy (a later use of the forkserver here starts
    a server of its own). Returns True in a forkserver's child.
    """
    return leave_forkserver()
