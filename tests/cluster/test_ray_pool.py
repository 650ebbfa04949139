"""actor_pool and run_remote on a real local Ray cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import ray
from _actors import Stepper, count, count_to_3, ui_record
from _cluster import until
from ray.exceptions import RayActorError

from microscheduler import Priority, Task, TaskExecutor, TaskStatus, WorkerConfig
from microscheduler.ray import RemoteActorError, actor_pool, run_remote

UI, BG = Priority.UI, Priority.BACKGROUND


def single(name: str) -> TaskExecutor:
    """A single-processor executor whose worker owns one Stepper actor named ``name-0``."""
    config = WorkerConfig(resource_factory=actor_pool(Stepper, options={"name": name}))
    return TaskExecutor.from_config(config)


async def test_ui_work_preempts_a_remote_background_run_which_resumes(unique_name: str) -> None:
    """A UI task cancels the running remote Background call (the actor sees it) before it
    starts; the Background task then resumes from its last checkpoint to the exact sum."""
    async with single(unique_name) as executor:
        actor = ray.get_actor(f"{unique_name}-0")
        background = await executor.submit(Task(name="count", compute=count), BG)
        await until(actor.holding.remote, "the remote count holds at step 5")
        assert background.status is TaskStatus.RUNNING

        assert await executor.execute(Task(name="ui", compute=ui_record), UI) == "ui"
        assert await background == sum(range(10))
        assert await actor.get_log.remote() == [
            ("start", 0),
            ("hold", 5),
            ("cancelled", 5),  # the remote call stopped before the UI work began
            ("ui",),
            ("start", 5),  # the rerun resumed from the checkpoint after step 4
            ("done", 10),
        ]
        assert await actor.get_steps.remote() == list(range(10))  # no step ran twice
        stats = executor.statistics()
        assert (stats.preempted, stats.rescheduled, stats.completed) == (1, 1, 2)


async def test_with_a_grace_the_remote_call_is_still_stopped_at_once(unique_name: str) -> None:
    """With interrupt_grace, run_remote cancels the remote call as soon as the run is
    interrupted (the UI work does not wait out the grace), and the run resumes later."""
    config = WorkerConfig(
        interrupt_grace=60.0,
        resource_factory=actor_pool(Stepper, options={"name": unique_name}),
    )
    async with TaskExecutor.from_config(config) as executor:
        actor = ray.get_actor(f"{unique_name}-0")
        background = await executor.submit(Task(name="count", compute=count), BG)
        await until(actor.holding.remote, "the remote count holds at step 5")
        async with asyncio.timeout(30):  # far below the 60 s grace
            assert await executor.execute(Task(name="ui", compute=ui_record), UI) == "ui"
        assert await background == sum(range(10))
        log = await actor.get_log.remote()
        assert log[2:4] == [("cancelled", 5), ("ui",)]
        assert executor.statistics().rescheduled == 1


async def test_a_caller_cancel_stops_the_remote_call(unique_name: str) -> None:
    """Cancelling the caller cancels the remote call, which has stopped when the next
    task on that worker starts."""
    async with single(unique_name) as executor:
        actor = ray.get_actor(f"{unique_name}-0")
        handle = await executor.submit(Task(name="count", compute=count), BG)
        await until(actor.holding.remote, "the remote count holds at step 5")
        handle.cancel()
        assert await executor.execute(Task(name="ui", compute=ui_record), UI) == "ui"
        log = await actor.get_log.remote()
        assert log[-2:] == [("cancelled", 5), ("ui",)]
        assert handle.status is TaskStatus.CANCELLED


async def test_an_actor_killed_mid_run_fails_the_run_and_the_next_run_uses_the_restart(
    unique_name: str,
) -> None:
    """Killing the actor (Ray restarts it) fails that run with RemoteActorError chaining
    Ray's error, and the worker's next run goes to the restarted actor."""
    async with single(unique_name) as executor:
        actor = ray.get_actor(f"{unique_name}-0")
        first_pid = await actor.pid.remote()
        handle = await executor.submit(Task(name="count", compute=count), BG)
        await until(actor.holding.remote, "the remote count holds at step 5")
        ray.kill(actor, no_restart=False)

        with pytest.raises(RemoteActorError, match="^the actor running the remote call died") as e:
            await handle
        assert isinstance(e.value.__cause__, RayActorError)
        assert await executor.execute(Task(name="again", compute=count_to_3)) == 0 + 1 + 2
        assert await actor.pid.remote() != first_pid


async def test_the_remote_methods_own_exception_reaches_the_caller(unique_name: str) -> None:
    """An exception raised by the remote method is the caller's exception, type and message."""

    async def fail(resource: Any, state: object, interrupt: Any) -> Any:
        return await run_remote(interrupt, resource.fail, "remote trouble")

    async with single(unique_name) as executor:
        with pytest.raises(ValueError, match="^remote trouble$"):
            await executor.execute(Task(name="fail", compute=fail))


async def test_shutdown_leaves_no_pool_actor_alive(unique_name: str) -> None:
    """After shutdown every worker's actor is dead: its name is free and calls to it fail."""
    config = WorkerConfig(
        ui_workers=1,
        background_workers=1,
        resource_factory=actor_pool(Stepper, options={"name": unique_name}),
    )
    async with TaskExecutor.from_config(config):
        actors = [ray.get_actor(f"{unique_name}-{worker_id}") for worker_id in (0, 1)]
        assert len({await actor.pid.remote() for actor in actors}) == 2
    for worker_id, actor in enumerate(actors):
        with pytest.raises(ValueError, match="Failed to look up actor"):
            ray.get_actor(f"{unique_name}-{worker_id}")
        with pytest.raises(RayActorError):
            await actor.pid.remote()


def test_actor_pool_refuses_a_class_that_is_not_a_ray_actor() -> None:
    """actor_pool() needs a @ray.remote class and says so."""
    with pytest.raises(TypeError, match=r"^actor_pool\(\) needs a @ray.remote class"):
        actor_pool(object)
