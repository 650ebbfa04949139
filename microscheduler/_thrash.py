"""Thrash watch: a warning when Background runs keep being preempted before they checkpoint.

A Background run preempted before its first checkpoint is wasted work (``wasted_runs``):
its rerun starts from the same place. A few are normal; many in a row mean urgent work
arrives faster than a Background run can reach a checkpoint, so the background makes no
progress at all while the worker starts and aborts runs (an example service under one chat
user with the defaults started and aborted about 130 runs a second and indexed nothing).
The fix is ``WorkerConfig.min_background_slice``; the watch says so, once in a while.
"""

from __future__ import annotations

import collections
from typing import Any

__all__ = ("THRASH_INTERVAL", "THRASH_RUNS", "THRASH_WINDOW", "ThrashWatch")

#: Wasted runs within :data:`THRASH_WINDOW` seconds that count as thrashing.
THRASH_RUNS = 20
#: The sliding window, in seconds of the loop's clock.
THRASH_WINDOW = 10.0
#: At most one warning per this many seconds.
THRASH_INTERVAL = 60.0


class ThrashWatch:
    """Counts wasted runs in a sliding window and logs ``background_thrashing``.

    Invariants: the deque holds the loop times of the last wasted runs within the window,
    at most :data:`THRASH_RUNS` of them (memory is bounded whatever the rate); a warning is
    logged at most once per :data:`THRASH_INTERVAL`.
    """

    __slots__ = ("_last_warning", "_recent", "_slice", "window")

    def __init__(self, min_background_slice: float) -> None:
        self._slice = min_background_slice
        self._recent: collections.deque[float] = collections.deque(maxlen=THRASH_RUNS)
        self._last_warning: float | None = None
        self.window = THRASH_WINDOW

    def wasted(self, now: float, total: int, log: Any) -> bool:
        """Record one wasted run at loop time ``now`` (``total`` so far); True if it warned."""
        recent = self._recent
        recent.append(now)
        if len(recent) < THRASH_RUNS or now - recent[0] > self.window:
            return False
        if self._last_warning is not None and now - self._last_warning < THRASH_INTERVAL:
            return False
        self._last_warning = now
        log.warning(
            "background_thrashing",
            wasted_runs=total,
            recent=len(recent),
            window_s=round(now - recent[0], 3),
            min_background_slice=self._slice,
            fix=(
                "Background runs are preempted before their first checkpoint faster than "
                "they make progress (statistics().wasted_runs); set "
                "WorkerConfig(min_background_slice=...) to at least the time a run needs "
                "to reach a checkpoint"
            ),
        )
        return True
