"""The errors of the Ray integration, both in the :class:`~microscheduler.MicroschedulerError`
tree::

    MicroschedulerError
    ├── RemoteActorError            the actor running a remote call died or restarted mid-run
    └── SchedulerUnavailableError   the scheduler actor behind a client is gone
"""

from __future__ import annotations

from microscheduler import MicroschedulerError

__all__ = ("RemoteActorError", "SchedulerUnavailableError", "scheduler_gone")


class RemoteActorError(MicroschedulerError):
    """The Ray actor running a remote call died (or was restarted) before the call ended.

    ``__cause__`` is Ray's own error (a ``ray.exceptions.RayActorError``). With
    ``max_restarts`` on, Ray restarts the actor and the worker's next run uses it.
    """

    __module__ = "microscheduler.ray"


class SchedulerUnavailableError(MicroschedulerError):
    """The scheduler actor a client talks to is gone (killed, crashed or shut down).

    Raised by every call of a :class:`~microscheduler.ray.SchedulerClient` whose scheduler
    actor died, and given to every handle still waiting on it; ``__cause__`` is Ray's error.
    """

    __module__ = "microscheduler.ray"


def scheduler_gone(name: str, error: BaseException) -> SchedulerUnavailableError:
    """The error every call gets once the scheduler actor ``name`` is gone (Ray's as cause)."""
    gone = SchedulerUnavailableError(f"the scheduler actor {name!r} is gone: {error}")
    gone.__cause__ = error
    return gone
