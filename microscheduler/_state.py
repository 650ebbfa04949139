"""Task state: what a resumable task saves and restores across preemptions."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ("NoOpTaskState", "TaskState", "claim_state", "release_state")


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


# States held by live executions, by id: each holds a strong reference to its state, so an
# id cannot be reused while it is here. Only touched on event-loop threads, between awaits.
_in_use: set[int] = set()


def claim_state(state: object, task_name: str) -> None:
    """Mark ``state`` as used by one live execution of ``task_name``.

    Raises:
        ValueError: Another live execution uses the same object: their runs would
            overwrite each other's progress.
    """
    if id(state) in _in_use:
        raise ValueError(
            f"the state object {state!r} of task {task_name!r} is in use by another live "
            f"execution; pass initial_state as a zero-argument factory (for example the "
            f"state class itself) so each execution gets its own"
        )
    _in_use.add(id(state))


def release_state(state: object) -> None:
    """Mark ``state`` as free again, once the execution that claimed it has ended."""
    _in_use.discard(id(state))
