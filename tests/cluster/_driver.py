"""A separate driver process for the cluster tests: connects to a served scheduler.

``python _driver.py ADDRESS NAMESPACE NAME ROLE``: ``background`` executes the held remote
count and prints its result; ``ui`` executes a UI task and prints its result; ``orphan``
submits the held remote count, then exits when told to on stdin (without closing).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import ray

from microscheduler import InterruptContext, Priority, Task
from microscheduler.ray import connect, run_remote


async def count(resource: Any, state: object, interrupt: InterruptContext) -> int:
    result: int = await run_remote(interrupt, resource.count, 10, hold_at=5)
    return result


async def ui(resource: Any, state: object, interrupt: InterruptContext) -> str:
    result: str = await resource.record.remote("ui")
    return result


async def main(namespace: str, name: str, role: str) -> None:
    client = await connect(name, namespace=namespace)
    if role == "background":
        print("result", await client.execute(Task(name="count", compute=count)), flush=True)
    elif role == "ui":
        print("result", await client.execute(Task(name="ui", compute=ui), Priority.UI), flush=True)
    else:
        await client.submit(Task(name="count", compute=count))
        print("submitted", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print("exiting", flush=True)
        os._exit(0)  # no close(), no ray.shutdown(): the process is simply gone
    await client.close()


if __name__ == "__main__":
    address, namespace, name, role = sys.argv[1:]
    ray.init(address=address, namespace=namespace, log_to_driver=False)
    asyncio.run(main(namespace, name, role))
    ray.shutdown()
