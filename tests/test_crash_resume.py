"""The crash test: a process killed with SIGKILL mid-run loses no durable checkpoint.

Both tests are driven by the child processes' own output lines (each printed after the
event it names), never by sleeps: the parent kills the first child once it has reported a
few durable checkpoints, collects whatever else it printed before dying, and checks what a
second process finds in the same SQLite file.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from _integration import ROOT, load_example
from _snapshot_child import decode, payload

HERE = Path(__file__).resolve().parent
STORE_CHILD = HERE / "_snapshot_child.py"
EXECUTOR_CHILD = HERE / "_crash_child.py"


def run_until(command: list[str], kill_after: Callable[[str], bool]) -> list[str]:
    """Start ``command``, SIGKILL it once it printed a line for which ``kill_after`` is
    true, and return every line it printed (those after that line included)."""
    lines: list[str] = []
    # The with block closes both pipes and waits for the killed child.
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if kill_after(lines[-1]):
                    break
        finally:
            proc.send_signal(signal.SIGKILL)
        # Read on through the same file object: communicate() would read the pipe beneath
        # it and lose the lines this loop's read-ahead already buffered (a child far ahead
        # of a slow parent then seemed to resume from a snapshot it never reported saved).
        rest = proc.stdout.read()
        err = proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, f"the child ended by itself:\n{err}"
    return lines + rest.splitlines()


def run_until_saved(command: list[str], at_least: int) -> list[str]:
    """:func:`run_until` the child reports ``saved <n>`` with n >= at_least."""
    return run_until(command, lambda line: line.startswith("saved ") and int(line[6:]) >= at_least)


def numbers(lines: list[str], kind: str) -> list[int]:
    """The integers of every ``<kind> <n>`` line, in order (a line the kill cut short, or
    left empty, is skipped)."""
    words = [line.split() for line in lines]
    return [int(w[1]) for w in words if len(w) == 2 and w[0] == kind and w[1].isdigit()]


def integrity(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def test_store_keeps_the_last_reported_snapshot_through_sigkill(tmp_path: Path) -> None:
    """Three times over, a process saving 256 KiB snapshots as fast as it can is killed
    with SIGKILL; the next process finds the last snapshot reported saved, or the one
    after it (written, not yet reported), intact, and goes on from there."""
    db = tmp_path / "snapshots.db"
    command = [sys.executable, str(STORE_CHILD), "checkpoint", str(db), "job", str(256 * 1024)]
    resumed_from = 0
    for round_ in range(3):
        lines = run_until_saved(command, at_least=resumed_from + 5)
        assert numbers(lines, "resumed") == [resumed_from], f"round {round_}"
        last_reported = max(numbers(lines, "saved"))
        found = subprocess.run(
            [sys.executable, str(STORE_CHILD), "read", str(db), "job"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert found.returncode == 0, found.stderr  # a torn snapshot fails its digest
        kind, writer, seq = found.stdout.split()
        assert (kind, writer) == ("read", "job")
        assert int(seq) in (last_reported, last_reported + 1)
        assert integrity(db) == "ok"
        resumed_from = int(seq)


def test_executor_resumes_a_killed_keyed_task(tmp_path: Path) -> None:
    """A keyed Background task checkpointing every step through SQLiteSnapshotStore is
    killed with SIGKILL mid-run; a second process submitting the same key resumes from
    the last durable checkpoint (never earlier than the last one reported saved), runs at
    most one step more than the task has, returns the exact result and leaves no
    snapshot behind."""
    db, total = tmp_path / "snapshots.db", 200
    command = [sys.executable, str(EXECUTOR_CHILD), str(db), "doc-42", str(total)]
    first = run_until_saved([*command, "25"], at_least=5)
    assert first[0] == "resumed 0 attempt 1", first
    last_reported = max(numbers(first, "saved"))
    steps_first = numbers(first, "step")

    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    resumed = lines[0].split()
    assert resumed[0] == "resumed" and resumed[2:] == ["attempt", "1"], lines[0]
    resumed_from = int(resumed[1])
    assert last_reported <= resumed_from <= last_reported + 1
    steps_second = numbers(lines, "step")
    assert steps_second == list(range(resumed_from + 1, total + 1))
    assert len(steps_first) + len(steps_second) <= total + 1
    assert lines[-1] == f"result {sum(k * k for k in range(1, total + 1))}"

    assert integrity(db) == "ok"
    with sqlite3.connect(db) as check:
        left = check.execute("SELECT count(*) FROM microscheduler_snapshots").fetchone()
    check.close()
    assert left == (0,)  # a completed execution deletes its snapshot


def test_a_process_computes_nowait_snapshots_survive_a_kill_of_the_executor(
    tmp_path: Path,
) -> None:
    """A keyed process compute checkpointing with ``save_state_nowait`` loses no snapshot
    the executor reported stored when the executor's process is killed with SIGKILL; its
    child process dies with it (the output pipe it holds closes), and a second process
    resumes from the stored snapshot and returns the exact result."""
    db, total, hold = tmp_path / "snapshots.db", 60, 20
    command = [sys.executable, str(EXECUTOR_CHILD), str(db), "doc-7", str(total), "--process"]
    # run_until's communicate() returns only once every holder of the output pipe, the
    # worker's child process included, has exited.
    first = run_until_saved([*command, str(hold)], at_least=5)
    assert first[0] == "resumed 0 attempt 1", first
    last_reported = max(numbers(first, "saved"))

    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    resumed = lines[0].split()
    assert resumed[0] == "resumed" and resumed[2:] == ["attempt", "1"], lines[0]
    resumed_from = int(resumed[1])
    assert last_reported <= resumed_from <= hold
    assert numbers(lines, "step") == list(range(resumed_from + 1, total + 1))
    assert lines[-1] == f"result {sum(k * k for k in range(1, total + 1))}"


def test_resumable_indexer_example_continues_after_kill(tmp_path: Path) -> None:
    """examples/resumable_indexer.py killed with SIGKILL continues on its next run from the
    last chunk it reported saved (or the one after it) and indexes everything once."""
    example = load_example("resumable_indexer")
    chunks, total = example.CHUNKS, example.CHUNKS * len(example.DOCUMENTS)
    db = tmp_path / "indexer.db"
    command = [sys.executable, str(ROOT / "examples" / "resumable_indexer.py"), "--db", str(db)]
    saved = re.compile(r"saved (\d+) documents \+ (\d+) chunks")

    def position(line: str) -> int | None:
        match = saved.fullmatch(line)
        return None if match is None else int(match[1]) * chunks + int(match[2])

    first = run_until([*command, "--delay", "0.02"], lambda line: (position(line) or 0) >= 5)
    last_reported = max(p for p in map(position, first) if p is not None)

    second = subprocess.run([*command, "--delay", "0"], capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""  # the library is silent without a logging setup of its own
    lines = second.stdout.splitlines()
    resumed = re.fullmatch(r"resuming at (\w+), chunk (\d+)", lines[0])
    assert resumed is not None, lines[0]
    resumed_from = example.DOCUMENTS.index(resumed[1]) * chunks + int(resumed[2]) - 1
    assert last_reported <= resumed_from <= last_reported + 1
    assert [position(line) for line in lines[1:-1]] == list(range(resumed_from + 1, total + 1))
    assert lines[-1] == f"indexed {len(example.DOCUMENTS)} documents"


STORE_CHILD = Path(__file__).with_name("_snapshot_child.py")


def store_child(*args: str) -> list[str]:
    """Run the store child process to completion and return its output lines."""
    done = subprocess.run(
        [sys.executable, str(STORE_CHILD), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_two_processes_writing_one_store_file(tmp_path: Path) -> None:
    """Two processes saving 64 KiB snapshots into one file at the same time never fail
    and never corrupt it; each key ends with its writer's last snapshot, and the key
    both wrote ends with one writer's last snapshot, intact (last write wins)."""
    path = str(tmp_path / "shared.db")
    writes, size = 80, 64 * 1024
    procs = [
        subprocess.Popen(
            [sys.executable, str(STORE_CHILD), "write", path, writer, str(writes), str(size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in ("left", "right")
    ]
    outputs = [proc.communicate("go\n", timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.splitlines() == ["done"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = dict(db.execute("SELECT key, data FROM microscheduler_snapshots"))
    db.close()
    assert sorted(rows) == ["left", "right", "shared"]
    assert rows["left"] == payload("left", writes, size)
    assert rows["right"] == payload("right", writes, size)
    assert decode(rows["shared"]) in {("left", writes), ("right", writes)}
    assert store_child("read", path, "shared") == ["read {} {}".format(*decode(rows["shared"]))]
