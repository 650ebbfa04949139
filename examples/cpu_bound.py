"""CPU-bound work in a worker process: urgent work stops it at once, and it goes on after."""

import asyncio
import functools
import time

from microscheduler import Priority, Task, TaskExecutor


def count_primes(limit: int, resource: object, state: object, interrupt: object) -> int:
    """Pure Python that never polls `interrupt`: the executor stops its process instead."""
    return sum(all(n % d for d in range(2, int(n**0.5) + 1)) for n in range(2, limit))


async def click(resource: object, state: object, interrupt: object) -> float:
    return time.perf_counter()  # the first line of the urgent work


async def main() -> None:
    async with TaskExecutor(1) as executor:  # one worker serves every lane
        primes = Task(
            name="primes",
            compute=functools.partial(count_primes, 300_000),
            runs_in="process",  # a child process of the worker, paused by SIGSTOP
        )
        counting = await executor.submit(primes)
        await asyncio.sleep(1.0)  # the count is well under way
        sent = time.perf_counter()
        started = await executor.execute(Task(name="click", compute=click, priority=Priority.UI))
        print(f"urgent work started {(started - sent) * 1e6:.0f} us after its submit")
        print(f"primes below 300,000: {await counting:,} (runs: {counting.attempt})")


if __name__ == "__main__":  # child processes import this module: start nothing on import
    asyncio.run(main())
