"""Benchmark 10 — process computes: preemption that needs no cooperation, and its cost.

UI requests arrive from another process (a client writing its ``time.perf_counter_ns()``
to a socket at random moments; that clock is the system's monotonic clock, shared by
every process) while Background work burns 1 ms pure-Python CPU steps. Rows:

- **process p50/p99** (single-processor mode): arrival → the UI compute's first line,
  with the Background work in a process compute (it never polls and never awaits: the
  executor stops its child with ``SIGSTOP``). Baseline, same run: the same work as an
  ``async`` compute that awaits ``sleep(0)`` between steps (the best an asyncio
  scheduler can do with CPU work). Peer: a sync compute in a thread, polling
  ``is_interrupted()`` between steps. Absolute targets: p50 <= 200 us, p99 <= 1 ms.
- **all cores busy**: as many Background process computes as cores, CPU-bound UI work
  (3 ms of CPU, a process compute) arriving from another process; arrival → UI result,
  with ``preempt_background`` (pausing) against the same UI work on an idle executor
  (target <= 1.2x); peer: plain OS scheduling (no preemption).
- **throughput**: Background CPU jobs through process computes against the same jobs in
  a ``concurrent.futures.ProcessPoolExecutor`` with as many processes (target: time
  <= 1/0.95 of the pool's, i.e. throughput >= 0.95x).
- **pause cost**: extra wall time of a fixed Background process job per preemption by a
  trivial UI task (pause, the UI run, continue), informational.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from . import _library as lib
from ._harness import Row, median, percentile, ratio, run
from ._settings import Settings

STEP = 0.001  # seconds of CPU per Background step
UI_CPU = 0.003  # seconds of CPU of the UI work in the all-cores row
_CLIENT = """
import os, random, struct, sys, time
fd, count, seed = (int(arg) for arg in sys.argv[1:4])
low, high = (float(arg) for arg in sys.argv[4:6])
rng = random.Random(seed)
os.read(fd, 1)  # go
for _ in range(count):
    time.sleep(rng.uniform(low, high))
    os.write(fd, struct.pack("q", time.perf_counter_ns()))
os.read(fd, 1)  # done
"""


def spin(seconds: float) -> None:
    """Burn ``seconds`` of wall time in pure Python."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def burn_cpu(seconds: float) -> None:
    """Burn ``seconds`` of this process's CPU time (what a CPU-bound request costs)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def steps_in_process(steps: int, resource: object, state: object, interrupt: object) -> None:
    """Background work as a process compute: 1 ms steps, never polling."""
    for _ in range(steps):
        spin(STEP)


def steps_in_thread(steps: int, resource: object, state: object, interrupt: Any) -> None:
    """Background work as a sync compute in a thread: 1 ms steps, polling between them."""
    for _ in range(steps):
        spin(STEP)
        if interrupt.is_interrupted():
            return


async def steps_on_loop(steps: int, resource: object, state: object, interrupt: object) -> None:
    """Background work as an async compute: 1 ms steps, ``await sleep(0)`` between them."""
    for _ in range(steps):
        spin(STEP)
        await asyncio.sleep(0)


def ui_cpu_work(resource: object, state: object, interrupt: object) -> int:
    """CPU-bound UI work in a process: returns when it finished (monotonic ns)."""
    burn_cpu(UI_CPU)
    return time.perf_counter_ns()


def cpu_job(seconds: float) -> None:
    """A Background job of ``seconds`` of pure-Python work (for ProcessPoolExecutor)."""
    spin(seconds)


def cpu_job_compute(seconds: float, resource: object, state: object, interrupt: object) -> None:
    """The same job as a process compute."""
    spin(seconds)


class Arrivals:
    """A client process writing arrival stamps to a socket at random moments."""

    def __init__(self, count: int, seed: int, low: float, high: float) -> None:
        self._ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CLIENT, *map(str, (theirs.fileno(), count, seed, low, high))],
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self._buffer = b""

    def start(self, on_arrival: Callable[[int], None]) -> None:
        """Let the client go; ``on_arrival(stamp_ns)`` is called on the loop per arrival."""
        loop = asyncio.get_running_loop()
        self._ours.setblocking(False)

        def readable() -> None:
            self._buffer += self._ours.recv(4096)
            while len(self._buffer) >= 8:
                (stamp,) = struct.unpack("q", self._buffer[:8])
                self._buffer = self._buffer[8:]
                on_arrival(stamp)

        loop.add_reader(self._ours.fileno(), readable)
        self._ours.send(b"g")

    def close(self) -> None:
        """Stop watching and reap the client."""
        asyncio.get_running_loop().remove_reader(self._ours.fileno())
        self._ours.setblocking(True)
        self._ours.send(b"d")
        self._proc.wait()
        self._ours.close()


async def _latencies(
    settings: Settings, background: Any, samples: int, seed: int
) -> tuple[list[float], int]:
    """Single-processor executor, ``background`` fed back to back, ``samples`` UI
    arrivals from another process: arrival → UI first line, in seconds."""
    m = lib.ms()
    pending: deque[int] = deque()
    latencies: list[float] = []
    done = asyncio.Event()

    async def ui(resource: object, state: object, interrupt: object) -> None:
        latencies.append((time.perf_counter_ns() - pending.popleft()) / 1e9)
        if len(latencies) >= samples:
            done.set()

    ui_task = m.Task(name="ui", compute=ui, priority=m.Priority.UI)
    async with lib.executor(1) as executor:
        warm = m.Task(
            name="warm", compute=functools.partial(steps_in_process, 1), runs_in="process"
        )
        await executor.execute(warm)  # the child exists before the clock starts
        stop = False

        async def feed() -> None:
            while not stop:
                await executor.execute(background)

        feeder = asyncio.ensure_future(feed())
        client = Arrivals(samples, seed, 0.0005, 0.004)

        def arrived(stamp: int) -> None:
            pending.append(stamp)
            executor.submit_nowait(ui_task)

        client.start(arrived)
        await done.wait()
        client.close()
        stop = True
        await feeder
        preempted: int = executor.statistics().preempted
    return latencies, preempted


def _latency_rows(settings: Settings, loop: str) -> list[Row]:
    m = lib.ms()
    steps = 50
    variants = {
        "process": m.Task(
            name="bg",
            compute=functools.partial(steps_in_process, steps),
            runs_in="process",
        ),
        "async compute": m.Task(name="bg", compute=functools.partial(steps_on_loop, steps)),
        "thread compute": m.Task(name="bg", compute=functools.partial(steps_in_thread, steps)),
    }
    samples = 150 if settings.quick else 1000
    block = samples if settings.quick else 250
    found: dict[str, list[float]] = {name: [] for name in variants}
    preempted = dict.fromkeys(variants, 0)
    names = list(variants)
    for b in range(samples // block):
        for name in names[b % 3 :] + names[: b % 3]:
            got, count = run(
                loop,
                functools.partial(_latencies, settings, variants[name], block, settings.seed + b),
            )
            found[name] += got
            preempted[name] += count
    rows = []
    for q, target in ((50, 200e-6), (99, 1e-3)):
        library = percentile(found["process"], q)
        baseline = percentile(found["async compute"], q)
        rows.append(
            Row(
                benchmark=f"process p{q}",
                size=f"1ms CPU steps, {len(found['process'])} UI from another process",
                loop=loop,
                unit="s latency",
                library=library,
                baseline=baseline,
                baseline_name="async compute",
                ratio=ratio(library, baseline),
                target=None,
                peers={"thread compute": percentile(found["thread compute"], q)},
                detail={
                    "absolute_target_s": target,
                    "absolute_target_met": library <= target,
                    "medians_s": {name: median(v) for name, v in found.items()},
                    "preemptions": preempted,
                    "latencies_s": found if q == 99 else "see the p99 row",
                },
            )
        )
    return rows


async def _all_cores(settings: Settings, mode: str, samples: int, seed: int) -> list[float]:
    """Arrival → result of CPU-bound UI process work with every core busy (``mode``:
    ``pausing``, ``plain`` OS scheduling, or ``idle``: no Background load)."""
    m = lib.ms()
    cores = os.cpu_count() or 1
    config = m.WorkerConfig(
        ui_workers=1, background_workers=cores, preempt_background=mode == "pausing"
    )
    latencies: list[float] = []
    ui_task = m.Task(name="ui", compute=ui_cpu_work, runs_in="process", priority=m.Priority.UI)
    background = m.Task(
        name="bg", compute=functools.partial(steps_in_process, 200), runs_in="process"
    )
    async with m.TaskExecutor.from_config(config) as executor:
        stop = False

        async def feed() -> None:
            while not stop:
                await executor.execute(background)

        feeders = [asyncio.ensure_future(feed()) for _ in range(cores if mode != "idle" else 0)]
        # Every child the run needs (one per background worker, the UI worker's) exists
        # before the clock starts: the Background runs start theirs, then a UI run its own.
        while executor.statistics().running < len(feeders):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        await executor.execute(ui_task)
        waits: list[asyncio.Future[None]] = []
        all_arrived = asyncio.Event()

        async def one(stamp: int) -> None:
            finished: int = await executor.execute(ui_task)
            latencies.append((finished - stamp) / 1e9)

        def arrived(stamp: int) -> None:
            waits.append(asyncio.ensure_future(one(stamp)))
            if len(waits) == samples:
                all_arrived.set()

        client = Arrivals(samples, seed, 0.005, 0.02)
        client.start(arrived)
        await all_arrived.wait()
        await asyncio.gather(*waits)
        client.close()
        stop = True
        await asyncio.gather(*feeders)
    return latencies


def _all_cores_rows(settings: Settings, loop: str) -> list[Row]:
    samples, blocks = (40, 1) if settings.quick else (60, 5)
    modes = ["idle", "pausing", "plain"]
    found: dict[str, list[float]] = {mode: [] for mode in modes}
    for b in range(blocks):  # interleaved, so that a noisy minute hurts every mode
        for mode in modes[b % 3 :] + modes[: b % 3]:
            found[mode] += run(
                loop, functools.partial(_all_cores, settings, mode, samples, settings.seed + b)
            )
    rows = []
    for q in (50, 99):
        figures = {mode: percentile(v, q) for mode, v in found.items()}
        rows.append(
            Row(
                benchmark=f"all cores p{q}",
                size=f"{os.cpu_count()} bg processes, {UI_CPU * 1e3:g}ms UI x{samples * blocks}",
                loop=loop,
                unit="s latency",
                library=figures["pausing"],
                baseline=figures["idle"],
                baseline_name="idle executor",
                ratio=ratio(figures["pausing"], figures["idle"]),
                target=1.2,
                peers={"plain OS scheduling": figures["plain"]},
                detail={"latencies_s": found if q == 99 else "see the p99 row"},
            )
        )
    return rows


async def _library_throughput(jobs: int, seconds: float) -> float:
    m = lib.ms()
    cores = os.cpu_count() or 1
    config = m.WorkerConfig(ui_workers=1, background_workers=cores)
    task = m.Task(
        name="job", compute=functools.partial(cpu_job_compute, seconds), runs_in="process"
    )
    async with m.TaskExecutor.from_config(config) as executor:
        await asyncio.gather(*(executor.execute(task) for _ in range(cores)))  # warm
        start = time.perf_counter()
        await asyncio.gather(*(executor.execute(task) for _ in range(jobs)))
        return time.perf_counter() - start


def _pool_throughput(jobs: int, seconds: float) -> float:
    cores = os.cpu_count() or 1
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(cores, mp_context=context) as pool:
        list(pool.map(cpu_job, [seconds] * cores))  # warm
        start = time.perf_counter()
        list(pool.map(cpu_job, [seconds] * jobs))
        return time.perf_counter() - start


def _throughput_row(settings: Settings, loop: str) -> Row:
    jobs, seconds = (24, 0.01) if settings.quick else (200, 0.02)
    rounds = 2 if settings.quick else 5
    library: list[float] = []
    pool: list[float] = []
    for r in range(rounds):
        order = [0, 1] if r % 2 == 0 else [1, 0]
        for which in order:
            if which == 0:
                library.append(run(loop, functools.partial(_library_throughput, jobs, seconds)))
            else:
                pool.append(_pool_throughput(jobs, seconds))
    ratios = [a / b for a, b in zip(library, pool, strict=True)]
    return Row(
        benchmark="process throughput",
        size=f"{jobs} jobs x {seconds * 1e3:g}ms, {os.cpu_count()} processes",
        loop=loop,
        unit="s",
        library=median(library),
        baseline=median(pool),
        baseline_name="ProcessPoolExecutor",
        ratio=median(ratios),
        target=round(1 / 0.95, 3),
        detail={"library_s": library, "pool_s": pool},
    )


async def _pause_cost(preemptions: int, steps: int) -> float:
    """Wall time of one Background process job of ``steps`` ms, preempted that many times."""
    m = lib.ms()

    async def trivial(resource: object, state: object, interrupt: object) -> None:
        return None

    ui = m.Task(name="ui", compute=trivial, priority=m.Priority.UI)
    job = m.Task(name="bg", compute=functools.partial(steps_in_process, steps), runs_in="process")
    async with lib.executor(1) as executor:
        await executor.execute(
            m.Task(name="warm", compute=functools.partial(steps_in_process, 1), runs_in="process")
        )
        start = time.perf_counter()
        handle = executor.submit_nowait(job)
        gap = steps * STEP / (preemptions + 1)
        for _ in range(preemptions):
            await asyncio.sleep(gap)
            await executor.execute(ui)
        await handle
        return time.perf_counter() - start


def _pause_cost_row(settings: Settings, loop: str) -> Row:
    preemptions, steps = (20, 100) if settings.quick else (50, 200)
    rounds = 3 if settings.quick else 9
    plain: list[float] = []
    paused: list[float] = []
    for r in range(rounds):  # alternating, so that drift hurts both
        for count in (0, preemptions) if r % 2 == 0 else (preemptions, 0):
            took = run(loop, functools.partial(_pause_cost, count, steps))
            (paused if count else plain).append(took)
    per_round = [(p - q) / preemptions for p, q in zip(paused, plain, strict=True)]
    return Row(
        benchmark="pause+continue",
        size=f"{preemptions} preemptions of a {steps}ms job",
        loop=loop,
        unit="s latency",
        library=median(per_round),
        baseline=None,
        baseline_name="-",
        ratio=None,
        target=None,
        detail={"plain_s": plain, "preempted_s": paused, "per_preemption_s": per_round},
    )


def measure(settings: Settings, loop: str) -> list[Row]:
    """All process-compute rows on ``loop`` (quick mode: asyncio only)."""
    if lib.unavailable_reason() is not None or (settings.quick and loop != "asyncio"):
        return []
    rows = _latency_rows(settings, loop)
    rows += _all_cores_rows(settings, loop)
    rows.append(_throughput_row(settings, loop))
    rows.append(_pause_cost_row(settings, loop))
    return rows
