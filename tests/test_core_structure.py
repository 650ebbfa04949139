"""The core's shape: handles and executions as siblings, the execution's own verbs, the
CPython private names kept in one module, and a preemption that costs no task repr."""

from __future__ import annotations

import asyncio
import pathlib
import re

from _helpers import Gate, const, task

from microscheduler import InterruptContext, Priority, TaskExecutor, TaskHandle
from microscheduler._execution import Execution
from microscheduler._handle import JoinedHandle

UI, BG = Priority.UI, Priority.BACKGROUND
PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "microscheduler"


async def test_a_joined_handle_is_a_handle_but_not_an_execution(single: TaskExecutor) -> None:
    """A caller joining by key gets a TaskHandle that is not an Execution; the first
    caller's handle is the execution itself."""
    gate = Gate()
    first = single.submit_nowait(task(gate, BG, key="k"))
    joined = single.submit_nowait(task(gate, BG, key="k"))
    assert isinstance(first, Execution) and isinstance(first, TaskHandle)
    assert isinstance(joined, JoinedHandle) and isinstance(joined, TaskHandle)
    assert not isinstance(joined, Execution)
    assert not issubclass(JoinedHandle, Execution) and not issubclass(Execution, JoinedHandle)
    await gate.started.wait()
    gate.release.set()
    await asyncio.gather(first, joined)


def test_cpython_private_names_are_used_in_one_module() -> None:
    """The asyncio and multiprocessing private names the package relies on appear only
    in _cpython.py."""
    private = re.compile(
        r"\b(_get_running_loop|_log_traceback|_enter_task|_leave_task|_wakeup_next"
        r"|_forkserver_alive_fd|_forkserver_address)\b"
    )
    users = sorted(
        path.name
        for path in PACKAGE.rglob("*.py")
        if private.search(path.read_text(encoding="utf-8"))
    )
    assert users == ["_cpython.py"]


def test_no_core_module_is_over_400_lines() -> None:
    """One concept per module keeps each one short."""
    long = {
        path.name: n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


async def test_preemption_at_admission_does_not_format_the_submitting_task(
    single: TaskExecutor,
) -> None:
    """The victim's cancellation is anyio's own (its message starts "Cancelled via cancel
    scope") but names no task: formatting the submitter's repr cost ~10 us per preemption."""
    messages: list[str] = []
    started = asyncio.Event()

    async def victim(resource: object, state: object, ctx: InterruptContext) -> None:
        if ctx.attempt > 1:
            return
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError as exc:
            messages.append(str(exc))
            raise

    handle = single.submit_nowait(task(victim, BG))
    await started.wait()
    await single.execute(task(const(1), UI))
    await handle
    assert len(messages) == 1
    assert messages[0].startswith("Cancelled via cancel scope")
    assert " by <Task" not in messages[0]
