"""What process tests use to know where a child is, and to look at it from outside."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from pathlib import Path


class ChildGate:
    """A Unix socket the children report lines to (see tests/_process_computes.report)."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "gate.sock")
        self.release = str(directory / "release")
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ChildGate:
        self._server = await asyncio.start_unix_server(self._client, self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        self.lines.put_nowait(line.decode().strip())
        writer.close()
        await writer.wait_closed()

    async def next(self) -> str:
        """The next line a child reported (waits for it)."""
        return await self.lines.get()

    def open_release(self) -> None:
        """Let the children waiting for the release file go on."""
        Path(self.release).touch()


def proc_stat(pid: int) -> tuple[str, int]:
    """A process's state letter ('R', 'S', 'T' for stopped...) and CPU ticks used."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[11]) + int(fields[12])  # state, utime + stime


def exists(pid: int) -> bool:
    """True while a process with ``pid`` exists (a zombie included)."""
    return os.path.exists(f"/proc/{pid}")


def children_left() -> list[multiprocessing.Process]:
    """This process's multiprocessing children still alive."""
    return [child for child in multiprocessing.active_children() if child.is_alive()]


async def ended(pid: int) -> None:
    """Return once process ``pid`` has exited (the kernel's pidfd turns readable)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone and reaped already
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
