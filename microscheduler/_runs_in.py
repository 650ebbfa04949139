"""Where a compute runs (``Task.runs_in``), and what each place asks of the compute."""

from __future__ import annotations

import pickle
from typing import Literal

__all__ = ("RunsIn", "check_runs_in")

#: Where a compute runs: on the event loop, in a worker thread, or in a worker process.
RunsIn = Literal["loop", "thread", "process"]
_RUNS_IN = ("loop", "thread", "process")


def check_runs_in(runs_in: object, compute: object, is_async: bool) -> None:
    """Refuse a ``runs_in`` the compute cannot honour, naming the fix.

    A process compute is pickled here, once: a module-level ``def`` pickles as its name,
    so the check is cheap, and a compute that cannot travel to a child process is refused
    where the mistake is made rather than at its first run.
    """
    if runs_in not in _RUNS_IN:
        raise ValueError(
            f"Task runs_in must be 'loop', 'thread', 'process' or None, got {runs_in!r}"
        )
    if runs_in == "loop":
        if not is_async:
            raise TypeError(
                f"Task runs_in='loop' needs an async def compute, got {compute!r}; "
                f"a plain def runs in a thread or a process"
            )
        return
    if is_async:
        raise TypeError(
            f"Task runs_in={runs_in!r} needs a plain def compute, got the async {compute!r}; "
            f"an async def runs on the event loop (runs_in='loop' or None)"
        )
    if runs_in == "process":
        try:
            pickle.dumps(compute)
        except Exception as exc:
            raise TypeError(
                f"Task runs_in='process' needs a compute that pickles (a module-level def, "
                f"or a functools.partial of one), got {compute!r}: {exc}"
            ) from exc
