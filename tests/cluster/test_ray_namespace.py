"""serve()/connect() across drivers that set no Ray namespace (each job then has an
anonymous namespace of its own): the scheduler lives in one fixed namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from microscheduler.ray import SchedulerUnavailableError, connect

DRIVER = Path(__file__).with_name("_plain_driver.py")


def _env() -> dict[str, str]:
    """This process's environment (read now: ray.init adds the cluster's token to it)
    without asyncio's debug mode (CI's second pass), which reports Ray's slow blocking
    calls on asyncio's own logger: not the library's output, which the drivers check."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONASYNCIODEBUG"}


def _driver(address: str, name: str, role: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DRIVER), address, name, role],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], stdin: str | None = None) -> tuple[str, str]:
    out, err = process.communicate(stdin, timeout=120)
    assert process.returncode == 0, err
    return out, err


def test_a_second_driver_without_a_namespace_reaches_a_served_scheduler(
    ray_address: str, unique_name: str
) -> None:
    """Driver A serves with no namespace set, driver B (no namespace either) connects by
    name and gets its result; neither prints anything on stderr (the library is silent with
    logging unconfigured: the Ray client, the scheduler actor, an actor pool and
    run_remote)."""
    server = _driver(ray_address, unique_name, "serve")
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "served"
        out, err = _finish(_driver(ray_address, unique_name, "use"))
        assert (out, err) == ("result 42\npool 3\n", "")
        out, err = _finish(server, "stop\n")
        assert (out, err) == ("stopped\n", "")
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def test_a_name_not_found_says_which_namespace_was_searched(
    ray_address: str, unique_name: str
) -> None:
    """connect() of a name nobody served names the namespace it searched."""
    out, err = _finish(_driver(ray_address, unique_name, "missing"))
    assert out.strip() == (
        f"no scheduler actor named {unique_name!r} in Ray namespace 'microscheduler': start "
        f"one with serve({unique_name!r}, config) (serve and connect must name the same "
        f"namespace)"
    )
    assert err == ""


async def test_connect_names_another_namespace_when_told(unique_name: str) -> None:
    """An explicit namespace overrides the default, and the error names it."""
    with pytest.raises(SchedulerUnavailableError, match="in Ray namespace 'elsewhere'"):
        await connect(unique_name, namespace="elsewhere")


SERVICE = Path(__file__).with_name("_service_driver.py")


def _service(address: str, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SERVICE), address, name],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_processes_of_one_service_share_one_scheduler(
    ray_address: str, unique_name: str
) -> None:
    """Two processes of one web service starting at once, each running the docs' recipe
    (serve the scheduler or connect to it), both answer through the same single scheduler,
    which outlives them."""
    processes = [_service(ray_address, unique_name) for _ in range(2)]
    try:
        outputs = [_finish(process) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert [out for out, _err in outputs] == ["200 hello from the shared scheduler\n"] * 2
    scheduler = await connect(unique_name)
    try:
        stats = await scheduler.statistics()
        assert (stats.submitted, stats.completed) == (2, 2)
    finally:
        await scheduler.shutdown()
