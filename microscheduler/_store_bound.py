"""A time bound on every call an executor makes to its snapshot store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from ._snapshots import SnapshotStore

__all__ = ("BoundedStore",)

T = TypeVar("T")


class BoundedStore:
    """The executor's view of a snapshot store: every call ends within ``timeout`` seconds.

    A store call that outlives it is cancelled (a plain asyncio cancellation, so an
    ``SQLiteSnapshotStore`` call returns at once and its thread still commits or rolls back
    before the store's next call) and raises ``TimeoutError`` naming the call and
    ``store_timeout``; the worker turns it into ``StateRestoreError`` or ``StateSaveError``.
    A store whose call swallows its cancellation cannot be bounded.
    """

    __slots__ = ("store", "timeout")

    def __init__(self, store: SnapshotStore, timeout: float) -> None:
        self.store = store
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<BoundedStore {self.store!r} timeout={self.timeout}>"

    async def _bounded(self, call: str, key: str | None, awaitable: Awaitable[T]) -> T:
        # The call's description is formatted only on expiry, not on every keyed save.
        bound = asyncio.timeout(self.timeout)
        try:
            async with bound:
                return await awaitable
        except TimeoutError:
            if not bound.expired():
                raise  # the store's own TimeoutError
            described = call if key is None else f"{call[:-1]}{key!r})"
            raise TimeoutError(
                f"snapshot store {type(self.store).__name__}.{described} did not return within "
                f"store_timeout={self.timeout}s"
            ) from None

    async def open(self) -> None:
        """Open the store (its ``open()``, when it has one)."""
        opener = getattr(self.store, "open", None)
        if opener is not None:
            await self._bounded("open()", None, opener())

    async def load(self, key: str) -> bytes | None:
        """The store's ``load(key)``, bounded."""
        return await self._bounded("load()", key, self.store.load(key))

    async def save(self, key: str, data: bytes) -> None:
        """The store's ``save(key, data)``, bounded."""
        await self._bounded("save()", key, self.store.save(key, data))

    async def delete(self, key: str) -> None:
        """The store's ``delete(key)``, bounded."""
        await self._bounded("delete()", key, self.store.delete(key))

    async def close(self) -> None:
        """The store's ``close()``, bounded."""
        await self._bounded("close()", None, self.store.close())
