"""Per-worker resources from a resource factory (docs/design.md: configuration)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from _helpers import task

from microscheduler import (
    InterruptContext,
    Priority,
    TaskExecutor,
    WorkerConfig,
    WorkerInfo,
    WorkerType,
)


async def whose(resource: Any, state: object, ctx: InterruptContext) -> Any:
    return resource


class Connection:
    """An async context manager standing in for a DB connection (a real object, not a mock
    of the library)."""

    def __init__(self, name: str, log: list[str], *, fail_exit: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail_exit = fail_exit
        self.open = False

    async def __aenter__(self) -> str:
        self.open = True
        self.log.append(f"open {self.name}")
        return f"conn-{self.name}"

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.open = False
        self.log.append(f"close {self.name}")
        if self.fail_exit:
            raise OSError(f"cannot close {self.name}")


class TestDefaultResource:
    async def test_worker_info_without_factory(self) -> None:
        """Without a factory each task gets its worker's WorkerInfo."""
        async with TaskExecutor(3) as executor:
            assert await executor.execute(task(whose, Priority.UI)) == WorkerInfo(0, WorkerType.UI)
            info = await executor.execute(task(whose, Priority.BACKGROUND))
            assert info.worker_type is WorkerType.BACKGROUND and info.worker_id in (1, 2)


class TestFactory:
    async def test_called_once_per_worker_with_id_and_type(self) -> None:
        """The factory is called at start, once per worker, with (worker_id, worker_type)."""
        calls: list[tuple[int, WorkerType]] = []

        def factory(worker_id: int, worker_type: WorkerType) -> str:
            calls.append((worker_id, worker_type))
            return f"{worker_type}-{worker_id}"

        config = WorkerConfig(ui_workers=2, background_workers=1, resource_factory=factory)
        executor = TaskExecutor.from_config(config)
        assert calls == []
        async with executor:
            assert calls == [(0, WorkerType.UI), (1, WorkerType.UI), (2, WorkerType.BACKGROUND)]
            assert await executor.execute(task(whose)) == "BackgroundWorker-2"

    async def test_single_processor_factory_call(self) -> None:
        """ui_workers=0, background_workers=1 calls the factory as (0, WorkerType.UI)."""
        calls: list[tuple[int, WorkerType]] = []
        config = WorkerConfig(
            ui_workers=0, background_workers=1, resource_factory=lambda i, t: calls.append((i, t))
        )
        async with TaskExecutor.from_config(config):
            pass
        assert calls == [(0, WorkerType.UI)]

    async def test_awaitable_is_awaited(self) -> None:
        """A factory returning an awaitable gives tasks what it resolves to."""

        async def factory(worker_id: int, worker_type: WorkerType) -> str:
            await asyncio.sleep(0)
            return f"client-{worker_id}"

        config = WorkerConfig(resource_factory=factory)
        async with TaskExecutor.from_config(config) as executor:
            assert await executor.execute(task(whose)) == "client-0"

    async def test_async_context_manager_lives_as_long_as_the_worker(self) -> None:
        """An async context manager is entered at start, its __aenter__ value goes to tasks,
        and it is exited at shutdown."""
        log: list[str] = []
        connections: list[Connection] = []

        def factory(worker_id: int, worker_type: WorkerType) -> Connection:
            connections.append(Connection(str(worker_id), log))
            return connections[-1]

        config = WorkerConfig(ui_workers=1, background_workers=1, resource_factory=factory)
        async with TaskExecutor.from_config(config) as executor:
            assert log == ["open 0", "open 1"]
            assert await executor.execute(task(whose, Priority.UI)) == "conn-0"
            assert await executor.execute(task(whose)) == "conn-1"
        assert log == ["open 0", "open 1", "close 1", "close 0"]
        assert not any(c.open for c in connections)

    async def test_async_factory_returning_a_context_manager(self) -> None:
        """An async factory whose result is an async context manager gets it entered too."""
        log: list[str] = []

        async def factory(worker_id: int, worker_type: WorkerType) -> Connection:
            return Connection("a", log)

        async with TaskExecutor.from_config(WorkerConfig(resource_factory=factory)) as executor:
            assert await executor.execute(task(whose)) == "conn-a"
        assert log == ["open a", "close a"]


class TestFactoryFailures:
    async def test_factory_error_fails_start_unchanged(self) -> None:
        """A factory that raises fails start() with that very error; resources already
        built are closed and no worker is left running."""
        log: list[str] = []
        error = ConnectionRefusedError("db down")

        def factory(worker_id: int, worker_type: WorkerType) -> Connection:
            if worker_id == 2:
                raise error
            return Connection(str(worker_id), log)

        config = WorkerConfig(ui_workers=1, background_workers=2, resource_factory=factory)
        executor = TaskExecutor.from_config(config)
        before = asyncio.all_tasks()
        with pytest.raises(ConnectionRefusedError) as info:
            await executor.start()
        assert info.value is error
        assert log == ["open 0", "open 1", "close 1", "close 0"]
        assert asyncio.all_tasks() == before

    async def test_failed_start_via_async_with(self) -> None:
        """The factory's error also comes out of async with unchanged, not in a group."""
        error = RuntimeError("no model")

        def factory(worker_id: int, worker_type: WorkerType) -> object:
            raise error

        with pytest.raises(RuntimeError) as info:
            async with TaskExecutor.from_config(WorkerConfig(resource_factory=factory)):
                pass
        assert info.value is error

    async def test_aexit_error_is_reported_after_closing_the_rest(self) -> None:
        """A resource whose __aexit__ raises: the others are still closed and shutdown
        raises that error once everything is stopped."""
        log: list[str] = []

        def factory(worker_id: int, worker_type: WorkerType) -> Connection:
            return Connection(str(worker_id), log, fail_exit=worker_id == 1)

        config = WorkerConfig(ui_workers=1, background_workers=2, resource_factory=factory)
        executor = TaskExecutor.from_config(config)
        await executor.start()
        with pytest.raises(OSError, match="cannot close 1"):
            await executor.shutdown()
        assert log[-3:] == ["close 2", "close 1", "close 0"]
        await executor.shutdown()  # idempotent, and the error is not raised twice


class TestOtherFactoryShapes:
    async def test_sync_context_manager_is_entered_and_exited(self, tmp_path: Path) -> None:
        """A sync context manager (here a real SQLite connection under contextlib.closing)
        is entered at start, tasks get its __enter__ value, and it is exited at shutdown."""
        connections: list[sqlite3.Connection] = []

        def factory(worker_id: int, worker_type: WorkerType) -> Any:
            connections.append(sqlite3.connect(tmp_path / f"w{worker_id}.db"))
            return contextlib.closing(connections[-1])

        async def query(db: sqlite3.Connection, state: object, ctx: InterruptContext) -> Any:
            return db.execute("select 41 + 1").fetchone()[0]

        async with TaskExecutor(WorkerConfig(resource_factory=factory)) as executor:
            assert await executor.execute(task(query)) == 42
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            connections[0].execute("select 1")

    async def test_contextmanager_decorated_generator_is_entered(self) -> None:
        """A @contextlib.contextmanager factory is entered at start and exited at shutdown."""
        log: list[str] = []

        @contextlib.contextmanager
        def factory(worker_id: int, worker_type: WorkerType) -> Iterator[str]:
            log.append("open")
            yield "client"
            log.append("close")

        async with TaskExecutor(WorkerConfig(resource_factory=factory)) as executor:
            assert await executor.execute(task(whose)) == "client"
            assert log == ["open"]
        assert log == ["open", "close"]

    async def test_undecorated_generator_factories_are_refused(self) -> None:
        """A generator or async generator function used as the factory is refused at
        start() with a TypeError naming the decorator to add; no worker is left."""

        async def agen(worker_id: int, worker_type: WorkerType) -> AsyncIterator[str]:
            yield "client"

        def gen(worker_id: int, worker_type: WorkerType) -> Iterator[str]:
            yield "client"

        for factory, decorator in [
            (agen, r"@contextlib\.asynccontextmanager"),
            (gen, r"@contextlib\.contextmanager"),
        ]:
            executor = TaskExecutor(WorkerConfig(resource_factory=factory))
            before = asyncio.all_tasks()
            with pytest.raises(TypeError, match=rf"returned a generator.*{decorator}"):
                await executor.start()
            assert asyncio.all_tasks() == before
