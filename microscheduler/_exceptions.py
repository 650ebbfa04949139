"""The exception tree of microscheduler.

Every error the library defines derives from :class:`MicroschedulerError`::

    MicroschedulerError
    ├── ConfigError (also ValueError)       invalid WorkerConfig or processor count
    ├── ExecutorNotStartedError             execute/submit before start()
    ├── ExecutorShutdownError               the executor is shut down (or shutting down)
    ├── QueueFullError                      submit_nowait() on a full lane
    ├── TaskInterruptedError                an interrupted run called no_reschedule()
    ├── StateRestoreError                   TaskState.restore() raised before a run
    ├── StateSaveError                      TaskState.save() raised in save_state()
    └── WorkerProcessError                  a process compute's child process died on its own

``handle.result()`` and ``handle.exception()`` on a handle with no outcome yet raise
:class:`HandleNotDoneError`, which is both a ``RuntimeError`` and an
``asyncio.InvalidStateError`` (what ``asyncio.Future`` raises), outside this tree so that
code written for either keeps working.

Argument errors (a non-callable compute, a priority that is not a ``Priority``) stay plain
``TypeError``/``ValueError``, as in the standard library.
"""

from __future__ import annotations

import asyncio

__all__ = (
    "ConfigError",
    "ExecutorNotStartedError",
    "ExecutorShutdownError",
    "HandleNotDoneError",
    "MicroschedulerError",
    "QueueFullError",
    "StateRestoreError",
    "StateSaveError",
    "TaskInterruptedError",
    "WorkerProcessError",
)


class MicroschedulerError(Exception):
    """Base class of every error raised by microscheduler."""

    __module__ = "microscheduler"


class ConfigError(MicroschedulerError, ValueError):
    """A worker configuration or processor count is invalid."""

    __module__ = "microscheduler"


class ExecutorNotStartedError(MicroschedulerError):
    """Work was handed to an executor that has not been started."""

    __module__ = "microscheduler"


class ExecutorShutdownError(MicroschedulerError):
    """The executor is shut down, or shut down before the task could finish."""

    __module__ = "microscheduler"


class QueueFullError(MicroschedulerError):
    """``submit_nowait`` found the task's lane at capacity."""

    __module__ = "microscheduler"


class TaskInterruptedError(MicroschedulerError):
    """A run that called ``no_reschedule()`` was interrupted before it could return."""

    __module__ = "microscheduler"


class StateRestoreError(MicroschedulerError):
    """``TaskState.restore()`` raised; the compute was not run. ``__cause__`` holds why."""

    __module__ = "microscheduler"


class StateSaveError(MicroschedulerError):
    """``TaskState.save()`` raised inside ``save_state()``. ``__cause__`` holds why."""

    __module__ = "microscheduler"


class WorkerProcessError(MicroschedulerError):
    """The child process running a ``runs_in="process"`` compute died on its own.

    A segfault, ``os._exit()``, the OOM killer or a ``kill -9`` from outside: the message
    names the exit code or the signal. The worker goes on with a fresh child for its next
    run. (A child the executor ends itself, for a cancel, a timeout or a shutdown, gives its
    callers the usual outcome instead.)
    """

    __module__ = "microscheduler"


class HandleNotDoneError(RuntimeError, asyncio.InvalidStateError):
    """``result()`` or ``exception()`` was called on a handle that has no outcome yet.

    Both a ``RuntimeError`` and an ``asyncio.InvalidStateError``, so code written against
    ``asyncio.Future`` and code written against earlier versions both catch it.
    """
