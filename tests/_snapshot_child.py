"""A child process for the snapshot store tests: it uses a real SQLiteSnapshotStore.

Run as ``python tests/_snapshot_child.py MODE PATH ...``; it prints one line per event,
flushed at once, so the parent can follow it and kill it at a chosen moment:

- ``open PATH``: open the store; print ``opened`` or ``ConfigError: <message>``.
- ``write PATH WRITER N SIZE``: wait for a ``go`` line on stdin, then N times save a
  payload under the key WRITER and under the key ``shared``; print ``done``.
- ``checkpoint PATH KEY SIZE``: print ``resumed <n>`` for the payload already under KEY
  (0 if none), then save payloads n+1, n+2, ... under KEY forever, printing ``saved <n>``
  after each save has returned (the parent kills it).
- ``read PATH KEY``: print ``read <writer> <seq>`` for the payload under KEY (after
  checking it is intact), or ``read none``.

A payload is ``<writer>:<seq>:`` then SIZE filler bytes, then the SHA-256 of all that.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys

import structlog

from microscheduler import ConfigError, SQLiteSnapshotStore


def payload(writer: str, seq: int, size: int) -> bytes:
    """A self-checking snapshot: header, filler, digest."""
    body = f"{writer}:{seq}:".encode() + bytes([seq % 251]) * size
    return body + hashlib.sha256(body).digest()


def decode(data: bytes) -> tuple[str, int]:
    """Return ``(writer, seq)`` of an intact payload; raise ValueError for a torn one."""
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("payload digest mismatch: the snapshot is torn")
    writer, seq, _ = body.split(b":", 2)
    return writer.decode(), int(seq)


def say(line: str) -> None:
    print(line, flush=True)


async def main(mode: str, path: str, args: list[str]) -> None:
    store = SQLiteSnapshotStore(path, busy_timeout=30.0)
    if mode == "open":
        try:
            await store.open()
        except ConfigError as exc:
            say(f"ConfigError: {exc}")
        else:
            say("opened")
        await store.close()
        return
    async with store:
        if mode == "write":
            writer, count, size = args[0], int(args[1]), int(args[2])
            if sys.stdin.readline().strip() != "go":
                raise SystemExit("expected 'go' on stdin")
            for seq in range(1, count + 1):
                await store.save(writer, payload(writer, seq, size))
                await store.save("shared", payload(writer, seq, size))
            say("done")
        elif mode == "checkpoint":
            key, size = args[0], int(args[1])
            stored = await store.load(key)
            seq = 0 if stored is None else decode(stored)[1]
            say(f"resumed {seq}")
            while True:
                seq += 1
                await store.save(key, payload(key, seq, size))
                say(f"saved {seq}")
        elif mode == "read":
            data = await store.load(args[0])
            if data is None:
                say("read none")
            else:
                writer, seq = decode(data)
                say(f"read {writer} {seq}")
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
