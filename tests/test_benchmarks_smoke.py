"""The benchmark harness's own baselines behave as docs/design.md (performance) describes them.

These check behaviour only (order, preemption, results), never timing: every figure the
benchmarks report is a ratio measured at run time, so a wrong baseline would silently
make every ratio wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from benchmarks import soak
from benchmarks._harness import Row, format_table, interleave, median, percentile
from benchmarks._soak_checks import PhaseReport, check_phase
from benchmarks.baselines import (
    BACKGROUND,
    LAST_EFFORT,
    UI,
    PreemptingPool,
    PriorityPool,
    aiojobs_execute,
    aiojobs_scheduler,
    bare_create_task,
)
from benchmarks.bench_scale import derive
from benchmarks.bench_service import parse_wrk
from microscheduler import TaskExecutor


def _recorder(log: list[str], name: str) -> Callable[[], Awaitable[str]]:
    async def job() -> str:
        log.append(name)
        return name

    return job


async def test_priority_pool_runs_by_priority_then_fifo() -> None:
    """Baseline (a) with one worker runs queued jobs by priority, FIFO within a priority."""
    log: list[str] = []
    gate = asyncio.Event()
    holding = asyncio.Event()

    async def hold() -> None:
        holding.set()
        await gate.wait()

    async with PriorityPool(1) as pool:
        first = pool.submit_nowait(hold)
        await holding.wait()
        futures = [
            pool.submit_nowait(_recorder(log, "bg1"), BACKGROUND),
            pool.submit_nowait(_recorder(log, "ui1"), UI),
            pool.submit_nowait(_recorder(log, "le1"), LAST_EFFORT),
            pool.submit_nowait(_recorder(log, "ui2"), UI),
            pool.submit_nowait(_recorder(log, "bg2"), BACKGROUND),
        ]
        gate.set()
        await first
        assert await asyncio.gather(*futures) == ["bg1", "ui1", "le1", "ui2", "bg2"]
    assert log == ["ui1", "ui2", "le1", "bg1", "bg2"]


async def test_priority_pool_delivers_results_and_errors() -> None:
    """Baseline (a) hands each caller its job's result or its job's own exception."""

    async def fail() -> None:
        raise KeyError("boom")

    async def answer() -> int:
        return 42

    async with PriorityPool(2) as pool:
        assert await pool.execute(answer) == 42
        with pytest.raises(KeyError, match="boom"):
            await pool.execute(fail)
        assert await pool.execute(answer, UI) == 42


async def test_preempting_pool_cancels_and_requeues_background_job() -> None:
    """Baseline (b): a UI submit cancels the running background job, which reruns after it."""
    log: list[str] = []
    started = asyncio.Event()
    attempts = 0

    async def background() -> str:
        nonlocal attempts
        attempts += 1
        log.append(f"bg start {attempts}")
        started.set()
        for _ in range(5):
            await asyncio.sleep(0)
        log.append("bg done")
        return "bg"

    async with PreemptingPool(1) as pool:
        bg = pool.submit_nowait(background, BACKGROUND)
        await started.wait()
        ui = pool.submit_nowait(_recorder(log, "ui"), UI)
        assert await ui == "ui"
        assert await bg == "bg"
        assert pool.preemptions == 1
    assert log == ["bg start 1", "ui", "bg start 2", "bg done"]


async def test_preempting_pool_leaves_background_alone_when_a_worker_is_idle() -> None:
    """Baseline (b) preempts only when no worker is free to take the urgent job."""
    started = asyncio.Event()
    release = asyncio.Event()

    async def background() -> str:
        started.set()
        await release.wait()
        return "bg"

    async def ui() -> str:
        release.set()
        return "ui"

    async with PreemptingPool(2) as pool:
        bg = pool.submit_nowait(background, BACKGROUND)
        await started.wait()
        assert await pool.execute(ui, UI) == "ui"
        assert await bg == "bg"
        assert pool.preemptions == 0


async def test_preempting_pool_shutdown_cancels_running_job() -> None:
    """Leaving baseline (b) cancels a running background job's future instead of requeuing."""
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async with PreemptingPool(1) as pool:
        future = pool.submit_nowait(forever, BACKGROUND)
        await started.wait()
    assert future.cancelled()


async def test_bare_create_task_and_aiojobs_peer_return_results() -> None:
    """Baseline (c) and the aiojobs peer run the job and return its result."""

    async def answer() -> int:
        return 7

    assert await bare_create_task(answer) == 7
    async with aiojobs_scheduler(1) as scheduler:
        results = await asyncio.gather(*(aiojobs_execute(scheduler, answer) for _ in range(5)))
    assert results == [7] * 5


async def test_interleave_rotates_the_order_of_variants() -> None:
    """The harness runs every variant once per round, starting each round one further on."""
    order: list[str] = []

    def variant(name: str) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            order.append(name)
            return 1.0

        return run

    samples = await interleave({"a": variant("a"), "b": variant("b"), "c": variant("c")}, 3)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert samples == {"a": [1.0] * 3, "b": [1.0] * 3, "c": [1.0] * 3}


def test_statistics_helpers() -> None:
    """Median and nearest-rank percentiles are the textbook ones."""
    values = [float(v) for v in range(1, 101)]
    assert median(values) == 50.5
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0


def test_scale_rows_and_table() -> None:
    """Scale growth is derived per loop and K from the overhead rows, and the table renders."""

    def overhead(n: int, library: float, baseline: float) -> Row:
        return Row(
            benchmark="overhead",
            size=f"N={n}",
            loop="asyncio",
            unit="s/task",
            library=library,
            baseline=baseline,
            baseline_name="pool (a)",
            ratio=library / baseline,
            target=1.5,
            detail={"n": n, "workers": 1},
        )

    rows = derive([overhead(100, 2e-5, 1e-5), overhead(1000, 3e-5, 1.25e-5)])
    assert len(rows) == 1
    assert rows[0].library == pytest.approx(1.5)
    assert rows[0].baseline == pytest.approx(1.25)
    assert rows[0].ratio == pytest.approx(1.2)
    assert rows[0].met is True
    table = format_table(rows)
    assert "scale" in table
    assert "1.20" in table


def test_soak_checks_flag_statistics_that_do_not_match_the_outcomes() -> None:
    """The soak run's phase check reports a statistics field that disagrees with the calls'
    outcomes, counting a late-cancelled caller where its execution ended."""
    outcomes = Counter({"result": 2, "cancelled late/failed": 1, "shutdown": 1})
    stats = dataclasses.replace(
        TaskExecutor(1).statistics(), submitted=4, completed=2, failed=0, cancelled=2
    )
    report = PhaseReport("phase", outcomes=outcomes)
    check_phase(report, stats, issued=4, violations=Counter())
    assert report.problems == [
        "statistics().failed == 0, calls say 1",
        "statistics().cancelled == 2, calls say 1",
    ]


def test_soak_short_run_passes(capsys: pytest.CaptureFixture[str]) -> None:
    """A short soak run through all three executor configurations ends OK, exit status 0."""
    status = soak.main(["--tasks", "300", "--callers", "8", "--sample-interval", "0.05"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith("microscheduler soak: 300 tasks in ")
    assert out.count("counts add up and match the calls' outcomes: yes") == 3
    assert out.rstrip().endswith("OK")


WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/chat
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    58.70ms    9.31ms  96.80ms   80.00%
    Req/Sec   162.30     20.05   200.00     75.00%
  Latency Distribution
     50%   58.70ms
     75%   61.05ms
     90%   70.18ms
     99%   1.02s
  1623 requests in 10.00s, 252.70KB read
  Non-2xx or 3xx responses: 3
Requests/sec:    162.20
Transfer/sec:     25.27KB
"""


def test_wrk_output_is_read_in_seconds() -> None:
    """The service benchmark reads wrk's p50/p99 in any unit, the rate and the errors."""
    found = parse_wrk(WRK_OUTPUT)
    assert found == {"p50_s": 0.0587, "p99_s": 1.02, "requests_per_s": 162.2, "errors": 3}


def test_wrk_latencies_in_whole_seconds_are_read_despite_wrks_trailing_space() -> None:
    """wrk pads a latency in seconds with a space ("1.21s "); the p50 and p99 are still
    read, and a run that answered nothing reports NaN rather than failing."""
    padded = WRK_OUTPUT.replace("58.70ms\n", "1.21s \n", 1).replace("1.02s\n", "1.22s \n")
    found = parse_wrk(padded)
    assert (found["p50_s"], found["p99_s"]) == (1.21, 1.22)
    empty = parse_wrk("Requests/sec:      0.00\n")
    assert math.isnan(empty["p50_s"])
    assert math.isnan(empty["p99_s"])
