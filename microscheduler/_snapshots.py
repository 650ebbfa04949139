"""Snapshot stores: where keyed tasks' checkpoints live between runs and processes."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ("MemorySnapshotStore", "SnapshotStore")


@runtime_checkable
class SnapshotStore(Protocol):
    """Keeps the latest snapshot of each keyed task.

    All methods are coroutines. ``save`` returns once the snapshot is durable (as durable as
    the store is: memory for :class:`MemorySnapshotStore`).
    """

    async def load(self, key: str) -> bytes | None:
        """Return the snapshot stored under ``key``, or None."""
        ...

    async def save(self, key: str, data: bytes) -> None:
        """Store ``data`` as the snapshot of ``key``, replacing any earlier one."""
        ...

    async def delete(self, key: str) -> None:
        """Forget the snapshot of ``key`` (no error if there is none)."""
        ...

    async def close(self) -> None:
        """Release the store's resources."""
        ...


SnapshotStore.__module__ = "microscheduler"


class MemorySnapshotStore:
    """Snapshots in a dict: the default store, lost when the process ends."""

    __module__ = "microscheduler"
    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    async def load(self, key: str) -> bytes | None:
        """Return the snapshot stored under ``key``, or None."""
        return self._data.get(key)

    async def save(self, key: str, data: bytes) -> None:
        """Store ``data`` as the snapshot of ``key``."""
        self._data[key] = bytes(data)

    async def delete(self, key: str) -> None:
        """Forget the snapshot of ``key``."""
        self._data.pop(key, None)

    async def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"<MemorySnapshotStore keys={len(self._data)}>"
