"""serve() and connect(): an executor in a detached Ray actor, used from several drivers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import ray
from _actors import Stepper, count, no_gpu, ui_record
from _cluster import NAMESPACE, local_only, until
from ray.exceptions import RayActorError

from microscheduler import (
    ExecutorShutdownError,
    Priority,
    Task,
    TaskStatus,
    WorkerConfig,
)
from microscheduler.ray import (
    SchedulerClient,
    SchedulerUnavailableError,
    actor_pool,
    connect,
    serve,
)

UI, BG = Priority.UI, Priority.BACKGROUND
DRIVER = Path(__file__).with_name("_driver.py")


@pytest.fixture
async def client(unique_name: str) -> AsyncIterator[SchedulerClient]:
    """A served single-worker scheduler named ``unique_name`` whose worker owns a Stepper
    named ``unique_name-pool-0``; shut down (actor and pool removed) at teardown."""
    pool = actor_pool(Stepper, options={"name": f"{unique_name}-pool"})
    served = await serve(unique_name, WorkerConfig(resource_factory=pool), namespace=NAMESPACE)
    try:
        yield served
    finally:
        try:
            await served.shutdown()
        except SchedulerUnavailableError:
            pass  # the test killed the scheduler itself


def stepper(name: str) -> Any:
    return ray.get_actor(f"{name}-pool-0")


async def test_execute_and_submit_give_results_and_statistics(client: SchedulerClient) -> None:
    """execute returns the result; a submitted handle awaits to its result, reports
    COMPLETED, name and priority; statistics count both executions."""

    async def double(resource: object, state: object, interrupt: object) -> int:
        return 21 * 2

    assert await client.execute(Task(name="double", compute=double)) == 42
    handle = await client.submit(Task(name="sync", compute=lambda *_: "from a thread"), UI)
    assert await handle == "from a thread"
    assert (handle.done(), handle.result(), handle.status) == (
        True,
        "from a thread",
        TaskStatus.COMPLETED,
    )
    assert (handle.name, handle.priority) == ("sync", UI)
    stats = await client.statistics()
    assert (stats.submitted, stats.completed) == (2, 2)


async def test_the_tasks_exception_and_timeouts_reach_the_caller(client: SchedulerClient) -> None:
    """A task's exception arrives with its type and message; execute(timeout=) expiry is a
    TimeoutError and the remote run is cancelled."""

    async def boom(resource: object, state: object, interrupt: object) -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await client.execute(Task(name="boom", compute=boom))
    with pytest.raises(TimeoutError, match="did not finish within 0.5s"):
        await client.execute(Task(name="count", compute=count), timeout=0.5)
    await until(lambda: _counted(client, "timed_out", 1), "the timed-out run has ended")
    assert (await client.statistics()).failed == 1


async def test_a_handle_cancel_cancels_the_remote_run(client: SchedulerClient) -> None:
    """A running handle reports RUNNING and no result yet (an error both RuntimeError and
    asyncio.InvalidStateError; its repr shows the key); handle.cancel() cancels the run in
    the scheduler, which cancels its remote call."""
    actor = stepper(client.name)
    handle = await client.submit(Task(name="count", compute=count, key="job-1"), BG)
    await until(actor.holding.remote, "the remote count holds at step 5")
    await until(lambda: _running(handle), "the scheduler reported the run")
    with pytest.raises(RuntimeError, match="^task 'count' is not done yet"):
        handle.result()
    with pytest.raises(asyncio.InvalidStateError, match="^task 'count' is not done yet"):
        handle.result()
    assert "key='job-1'" in repr(handle)
    assert not handle.done()
    assert handle.cancel()
    assert not handle.cancel()  # it already has its outcome
    with pytest.raises(asyncio.CancelledError):
        await handle
    assert handle.status is TaskStatus.CANCELLED
    await until(
        lambda: _logged(actor, ("cancelled", 5)), "the actor saw the cancellation", timeout=10
    )
    await until(lambda: _counted(client, "cancelled", 1), "the scheduler counted the cancel")


async def test_cancelling_the_caller_of_execute_cancels_the_remote_run(
    client: SchedulerClient,
) -> None:
    """Cancelling a coroutine awaiting client.execute cancels the run in the scheduler and
    its remote call; the cancellation propagates to the caller."""
    actor = stepper(client.name)
    caller = asyncio.create_task(client.execute(Task(name="count", compute=count)))
    await until(actor.holding.remote, "the remote count holds at step 5")
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await until(lambda: _logged(actor, ("cancelled", 5)), "the actor saw the cancellation")
    await until(lambda: _counted(client, "cancelled", 1), "the scheduler counted the cancel")


async def test_closing_a_client_cancels_its_calls_only(client: SchedulerClient) -> None:
    """close() cancels the calls of that client (its handles end cancelled, the remote run
    stops) and refuses new submits; the scheduler and its other clients go on."""
    actor = stepper(client.name)
    other = await connect(client.name, namespace=NAMESPACE)
    handle = await other.submit(Task(name="count", compute=count), BG)
    await until(actor.holding.remote, "the remote count holds at step 5")
    await other.close()
    with pytest.raises(asyncio.CancelledError):
        await handle
    assert handle.status is TaskStatus.CANCELLED
    await until(lambda: _logged(actor, ("cancelled", 5)), "the actor saw the cancellation")
    with pytest.raises(RuntimeError, match="^this SchedulerClient is closed"):
        await other.submit(Task(name="late", compute=ui_record))
    assert await client.execute(Task(name="ui", compute=ui_record), UI) == "ui"


async def test_a_compute_that_cannot_be_serialised_is_refused_at_submit(
    client: SchedulerClient,
) -> None:
    """A task whose compute holds a lock is a TypeError naming the task; nothing is queued."""
    lock = threading.Lock()

    def locked(resource: object, state: object, interrupt: object) -> bool:
        return lock.locked()

    with pytest.raises(TypeError, match="^task 'locked' cannot be sent to the scheduler actor"):
        await client.submit(Task(name="locked", compute=locked))
    assert (await client.statistics()).submitted == 0


async def test_a_compute_the_scheduler_cannot_import_is_refused_at_submit(
    client: SchedulerClient,
) -> None:
    """A compute pickled by reference to a module Ray's workers cannot import is a TypeError
    naming the task and the missing module; nothing is queued."""
    with pytest.raises(TypeError, match="^task 'local' could not be loaded .*_cluster"):
        await client.submit(Task(name="local", compute=local_only))
    assert (await client.statistics()).submitted == 0


async def test_the_scheduler_actor_dying_fails_every_call(client: SchedulerClient) -> None:
    """When the scheduler actor is killed, a waiting handle, a new submit and statistics
    all raise SchedulerUnavailableError instead of hanging."""
    actor = stepper(client.name)
    handle = await client.submit(Task(name="count", compute=count), BG)
    await until(actor.holding.remote, "the remote count holds at step 5")
    ray.kill(ray.get_actor(client.name, namespace=NAMESPACE), no_restart=True)

    with pytest.raises(SchedulerUnavailableError, match="is gone") as waiting:
        await handle
    assert handle.status is TaskStatus.FAILED
    with pytest.raises(SchedulerUnavailableError, match="is gone") as submitting:
        await client.execute(Task(name="late", compute=ui_record), UI)
    with pytest.raises(SchedulerUnavailableError, match="is gone") as asking:
        await client.statistics()
    for error in (waiting, submitting, asking):
        assert isinstance(error.value.__cause__, RayActorError)


async def test_shutdown_removes_the_scheduler_and_its_pool(unique_name: str) -> None:
    """shutdown() ends queued calls with ExecutorShutdownError and leaves neither the
    scheduler actor nor its pool actor alive; connect() then says no scheduler runs."""
    pool = actor_pool(Stepper, options={"name": f"{unique_name}-pool"})
    client = await serve(unique_name, WorkerConfig(resource_factory=pool), namespace=NAMESPACE)
    with pytest.raises(ValueError, match="already exists"):
        await serve(unique_name, WorkerConfig(), namespace=NAMESPACE)
    running = await client.submit(Task(name="count", compute=count), BG)
    queued = await client.submit(Task(name="queued", compute=ui_record), BG)
    await until(stepper(unique_name).holding.remote, "the remote count holds at step 5")
    await client.shutdown()
    for handle in (running, queued):
        with pytest.raises(ExecutorShutdownError):
            await handle
        assert handle.status is TaskStatus.CANCELLED
    for name in (unique_name, f"{unique_name}-pool-0"):
        with pytest.raises(ValueError, match="Failed to look up actor"):
            ray.get_actor(name, namespace=NAMESPACE)
    with pytest.raises(SchedulerUnavailableError, match="no scheduler actor named"):
        await connect(unique_name, namespace=NAMESPACE)


async def test_a_start_failure_reaches_serve_and_frees_the_name(unique_name: str) -> None:
    """A resource factory's error reaches serve()'s caller unchanged, and no scheduler
    actor is left under the name."""
    with pytest.raises(RuntimeError, match="^no GPU on this node$"):
        await serve(unique_name, WorkerConfig(resource_factory=no_gpu), namespace=NAMESPACE)
    with pytest.raises(SchedulerUnavailableError, match="no scheduler actor named"):
        await connect(unique_name, namespace=NAMESPACE)


async def test_a_ui_driver_preempts_a_background_drivers_remote_work(
    client: SchedulerClient, ray_address: str
) -> None:
    """Two driver processes share the scheduler: the UI process's task preempts the
    Background process's remote run, which then resumes and returns the exact sum."""
    actor = stepper(client.name)
    background = _driver(ray_address, client.name, "background")
    try:
        await until(actor.holding.remote, "the background driver's count holds at step 5")
        ui = _driver(ray_address, client.name, "ui")
        assert _finish(ui) == "result ui"
        assert _finish(background) == f"result {sum(range(10))}"
    finally:
        _reap(background)
    log = await actor.get_log.remote()
    assert log == [("start", 0), ("hold", 5), ("cancelled", 5), ("ui",), ("start", 5), ("done", 10)]


async def test_a_client_process_that_exits_leaves_nothing_running(
    client: SchedulerClient, ray_address: str
) -> None:
    """When a driver exits with a call still running in the scheduler, the call is
    cancelled (the remote actor sees it) and the worker is free for others."""
    actor = stepper(client.name)
    orphan = _driver(ray_address, client.name, "orphan")
    try:
        await until(actor.holding.remote, "the orphan driver's count holds at step 5")
        assert _finish(orphan, "exit\n") == "exiting"
    finally:
        _reap(orphan)
    await until(lambda: _logged(actor, ("cancelled", 5)), "the orphaned call was cancelled")
    assert await client.execute(Task(name="ui", compute=ui_record), UI) == "ui"
    await until(lambda: _counted(client, "cancelled", 1), "the scheduler counted the cancel")


def _driver(address: str, name: str, role: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DRIVER), address, NAMESPACE, name, role],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], stdin: str | None = None) -> str:
    out, err = process.communicate(stdin, timeout=60)
    assert process.returncode == 0, err
    return out.strip().splitlines()[-1]


def _reap(process: subprocess.Popen[str]) -> None:
    """Kill the driver if it still runs (a failed test) and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.communicate()


async def _running(handle: Any) -> bool:
    return handle.status is TaskStatus.RUNNING


async def _logged(actor: Any, entry: tuple[Any, ...]) -> bool:
    return entry in await actor.get_log.remote()


async def _counted(client: SchedulerClient, field: str, value: int) -> bool:
    return getattr(await client.statistics(), field) == value  # type: ignore[no-any-return]
