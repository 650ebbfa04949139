"""The public surface: names, enums and value types (docs/design.md: public API)."""

from __future__ import annotations

import dataclasses

import pytest

import microscheduler
from microscheduler import (
    ConfigError,
    MicroschedulerError,
    Priority,
    WorkerInfo,
    WorkerType,
)

PUBLIC_NAMES = {
    "Priority", "WorkerType", "WorkerInfo", "Task", "TaskState", "NoOpTaskState",
    "InterruptContext", "WorkerConfig", "TaskExecutor", "TaskHandle", "TaskStatus",
    "ExecutorStatistics", "MicroschedulerError", "ExecutorShutdownError",
    "ExecutorNotStartedError", "QueueFullError", "TaskInterruptedError", "StateRestoreError",
    "StateSaveError", "ConfigError",
    # Version 2
    "SchedulerEvent", "SnapshotStore", "MemorySnapshotStore", "SQLiteSnapshotStore",
    "QueueWait",
    # Version 3
    "WorkerProcessError",
}  # fmt: skip


class TestExports:
    def test_all_matches_exports(self) -> None:
        """``__all__`` is sorted, complete and names exactly the public names."""
        assert list(microscheduler.__all__) == sorted(microscheduler.__all__)
        assert set(microscheduler.__all__) == PUBLIC_NAMES
        for name in microscheduler.__all__:
            assert hasattr(microscheduler, name)

    @pytest.mark.parametrize("name", sorted(PUBLIC_NAMES))
    def test_public_classes_report_the_package_module(self, name: str) -> None:
        """Every public class says it lives in ``microscheduler``, not a private module."""
        assert getattr(microscheduler, name).__module__ == "microscheduler"

    def test_every_library_error_is_a_microscheduler_error(self) -> None:
        """All exceptions derive from MicroschedulerError; ConfigError is also a ValueError."""
        errors = [getattr(microscheduler, n) for n in PUBLIC_NAMES if n.endswith("Error")]
        assert len(errors) == 9
        for error in errors:
            assert issubclass(error, MicroschedulerError)
        assert issubclass(ConfigError, ValueError)


class TestPriority:
    def test_values_order_urgent_first(self) -> None:
        """UI=0 < LastEffort=1 < Background=2: smaller is more urgent."""
        assert (Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND) == (0, 1, 2)
        assert sorted([Priority.BACKGROUND, Priority.UI, Priority.LAST_EFFORT]) == [
            Priority.UI,
            Priority.LAST_EFFORT,
            Priority.BACKGROUND,
        ]

    def test_str_names(self) -> None:
        """str() gives the Go names: UI, LastEffort, Background."""
        assert [str(p) for p in Priority] == ["UI", "LastEffort", "Background"]
        assert f"{Priority.LAST_EFFORT}" == "LastEffort"


class TestWorkerTypes:
    def test_str_names(self) -> None:
        """str() gives UIWorker and BackgroundWorker."""
        assert str(WorkerType.UI) == "UIWorker"
        assert str(WorkerType.BACKGROUND) == "BackgroundWorker"

    def test_worker_info_is_frozen(self) -> None:
        """WorkerInfo is a frozen value with worker_id and worker_type."""
        info = WorkerInfo(3, WorkerType.BACKGROUND)
        assert (info.worker_id, info.worker_type) == (3, WorkerType.BACKGROUND)
        assert info == WorkerInfo(worker_id=3, worker_type=WorkerType.BACKGROUND)
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.worker_id = 4  # type: ignore[misc]
