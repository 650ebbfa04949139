"""Process computes for the tests: module level (so they pickle), importing little.

Computes tell the test where they are through a gate: a line sent to a Unix socket the test
listens on (:class:`Gate` in tests/_process_gates.py). They never sleep to order anything.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
from typing import Any


def report(gate: str, line: str) -> None:
    """Send ``line`` to the test's gate socket at path ``gate``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(gate)
        sock.sendall(line.encode() + b"\n")


def spin_until_released(gate: str, release: str, resource: Any, state: Any, interrupt: Any) -> Any:
    """A pure-Python loop that never polls ``interrupt``: adds 1, 2, 3, ... until the file
    ``release`` exists (looked at every 65536 steps), then returns (pid, steps, total)."""
    report(gate, f"started {os.getpid()} attempt={interrupt.attempt}")
    steps = total = 0
    while True:
        for _ in range(65536):
            steps += 1
            total += steps
        if os.path.exists(release):
            return os.getpid(), steps, total


def whoami(resource: Any, state: Any, interrupt: Any) -> Any:
    """Return the child's pid and the resource it was given."""
    return os.getpid(), resource


def loaded_model() -> Any:
    """A process_initializer: what it returns becomes every process compute's resource."""
    return {"model": "loaded", "pid": os.getpid()}


def fails_to_load() -> Any:
    """A process_initializer that raises."""
    raise RuntimeError("no model file")


def raise_value_error(resource: Any, state: Any, interrupt: Any) -> Any:
    """Raise an exception that pickles."""
    raise ValueError(f"bad input in {os.getpid()}")


class LockedError(Exception):
    """An exception that holds a lock, so it cannot be pickled."""

    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def raise_unpicklable(resource: Any, state: Any, interrupt: Any) -> Any:
    """Raise an exception that cannot be pickled."""
    raise LockedError


def return_unpicklable(resource: Any, state: Any, interrupt: Any) -> Any:
    """Return a value that cannot be pickled."""
    return threading.Lock()


def exit_hard(code: int, resource: Any, state: Any, interrupt: Any) -> Any:
    """Leave the child at once with exit ``code`` (no cleanup, no answer)."""
    os._exit(code)


def wait_for_kill(gate: str, resource: Any, state: Any, interrupt: Any) -> Any:
    """Report the pid, then block until killed."""
    report(gate, f"started {os.getpid()}")
    threading.Event().wait()


class Steps:
    """A TaskState: the steps done so far."""

    def __init__(self) -> None:
        self.done: list[int] = []

    def save(self) -> bytes:
        return pickle.dumps(self.done)

    def restore(self, data: bytes) -> None:
        self.done = pickle.loads(data)


def steps_then_spin(gate: str, release: str, resource: Any, state: Steps, interrupt: Any) -> Any:
    """Do steps 0..2 with a snapshot after each; after step 1 (first attempt only) report
    and spin until ``release`` exists. Returns (steps, pid and attempt of each run)."""
    runs = [(os.getpid(), interrupt.attempt)]
    for step in range(len(state.done), 3):
        state.done.append(step)
        interrupt.save_state_nowait(state)
        if step == 1 and interrupt.attempt == 1:
            report(gate, f"saved {os.getpid()}")
            while not os.path.exists(release):
                sum(range(10000))
    return state.done, runs


class LockedState:
    """A TaskState holding a lock: it cannot be pickled to a child process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def save(self) -> bytes:
        return b""

    def restore(self, data: bytes) -> None:
        pass


def state_of(pid: int, resource: Any, state: Any, interrupt: Any) -> Any:
    """Return this child's pid and the state letter of process ``pid`` ('T': stopped)."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    return os.getpid(), text[text.rindex(")") + 2]


class TwoPartError(Exception):
    """Pickles (as its class and args) but cannot be rebuilt from them: unpickling fails."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def raise_unrebuildable(resource: Any, state: Any, interrupt: Any) -> Any:
    """Raise an exception that pickles in the child but does not unpickle in the parent."""
    raise TwoPartError("broken", "on purpose")


def save_when_interrupted(gate: str, resource: Any, state: Steps, interrupt: Any) -> Any:
    """First run: report, spin until ``is_interrupted()``, save what it saw and return.
    A rerun returns the steps it was restored with."""
    if interrupt.attempt > 1:
        return state.done
    report(gate, f"started {os.getpid()}")
    while not interrupt.is_interrupted():
        sum(range(1000))
    state.done.append(interrupt.reason)
    interrupt.save_state_nowait(state)
    return "discarded: a preempted run's result is not kept"


def ignore_sigterm_and_wait(gate: str, resource: Any, state: Any, interrupt: Any) -> Any:
    """Ignore SIGTERM, report, then block until killed."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    report(gate, f"started {os.getpid()}")
    threading.Event().wait()
