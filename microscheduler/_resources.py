"""Per-worker resources: built once per worker at start, closed at shutdown."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from typing import Any

from ._config import ResourceFactory
from ._priority import WorkerInfo, WorkerType
from ._store_bound import BoundedStore

__all__ = ("open_all", "open_resources")


def _is_async_context_manager(value: object) -> bool:
    kind = type(value)
    return hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__")


def _is_context_manager(value: object) -> bool:
    kind = type(value)
    return hasattr(kind, "__enter__") and hasattr(kind, "__exit__")


def _refuse_generator(factory: object, value: object) -> None:
    """A generator is a context manager only once decorated: handed to tasks raw, it would
    never run its clean-up, so it is refused rather than guessed at."""
    if inspect.isasyncgen(value):
        decorator = "@contextlib.asynccontextmanager"
    elif inspect.isgenerator(value):
        decorator = "@contextlib.contextmanager"
    else:
        return
    raise TypeError(
        f"resource_factory {factory!r} returned a generator, which would never be closed: "
        f"decorate the factory with {decorator} so each worker's resource is entered at "
        f"start and exited at shutdown"
    )


async def open_resources(
    factory: ResourceFactory | None,
    workers: Sequence[tuple[int, WorkerType]],
    stack: contextlib.AsyncExitStack,
) -> list[object]:
    """Build one resource per worker, in worker-id order.

    Without a factory each worker's resource is its :class:`WorkerInfo`. A factory's value
    is used as it is, awaited if it is awaitable, and entered on ``stack`` if it (or what
    it awaited to) is an async context manager — so its ``__aexit__`` runs when the stack
    closes at shutdown. An async context manager that is also awaitable is entered, not
    awaited. A sync context manager (and not an async one) is entered the same way, its
    ``__enter__``/``__exit__`` running on the event loop. A raw generator or async
    generator (an undecorated ``yield`` factory) is refused with ``TypeError``.

    If the factory raises, the error propagates unchanged; the caller closes ``stack``,
    which exits the resources already entered.
    """
    if factory is None:
        return [WorkerInfo(worker_id, worker_type) for worker_id, worker_type in workers]
    resources: list[object] = []
    for worker_id, worker_type in workers:
        value = factory(worker_id, worker_type)
        if not _is_async_context_manager(value) and inspect.isawaitable(value):
            value = await value
        _refuse_generator(factory, value)
        if _is_async_context_manager(value):
            value = await stack.enter_async_context(value)  # type: ignore[arg-type]
        elif _is_context_manager(value):
            # Entered and exited on the event loop, where the factory itself ran.
            value = stack.enter_context(value)  # type: ignore[arg-type]
        resources.append(value)
    return resources


async def open_all(
    store: BoundedStore,
    factory: ResourceFactory | None,
    workers: Sequence[tuple[int, WorkerType]],
    stack: contextlib.AsyncExitStack,
    log: Any,
    *,
    owns_store: bool,
) -> list[object]:
    """Open the snapshot store (its ``open()``, if it has one), then every worker's
    resource; register their closing on ``stack``.

    The store is closed at shutdown only when the executor ``owns_store`` (it made the
    default one itself): a store the user passed in is the user's, and may be shared by
    several executors, so it is opened (an idempotent call) but never closed here.

    If anything fails, what was already opened is closed again (a closing error is
    logged, not raised) and the original error propagates unchanged.
    """
    try:
        await store.open()
        if owns_store:
            stack.push_async_callback(store.close)
        return await open_resources(factory, workers, stack)
    except BaseException:
        try:
            await stack.aclose()
        except Exception:
            log.exception("resource_close_failed")
        raise
