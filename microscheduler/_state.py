"""Task state: what a resumable task saves and restores across preemptions."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ("NoOpTaskState", "TaskState")


@runtime_checkable
class TaskState(Protocol):
    """State a task can snapshot to bytes and restore from them.

    An execution's state is passed to every run of its compute. When a run is preempted
    after calling ``InterruptContext.save_state(state)``, the executor calls
    ``restore(snapshot)`` on that same object before the next run, so the compute picks up
    from its last checkpoint instead of starting over.
    """

    def save(self) -> bytes:
        """Return a snapshot of the state."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the state with the one ``data`` (from :meth:`save`) describes."""
        ...


TaskState.__module__ = "microscheduler"  # Protocol's metaclass ignores a class-body value


class NoOpTaskState:
    """The state of a task that keeps none: saves ``b""`` and ignores restores."""

    __module__ = "microscheduler"
    __slots__ = ()

    def save(self) -> bytes:
        """Return an empty snapshot."""
        return b""

    def restore(self, data: bytes) -> None:
        """Do nothing: there is no state to restore."""

    def __repr__(self) -> str:
        return "NoOpTaskState()"
