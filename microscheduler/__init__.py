"""microscheduler: an asyncio-native, priority-based task scheduler.

Work runs in three lanes (UI, LastEffort, Background) on a pool of worker coroutines;
urgent work preempts Background work, and interrupted stateful work resumes from its last
saved snapshot instead of starting over.
"""

from ._config import WorkerConfig as WorkerConfig
from ._events import SchedulerEvent as SchedulerEvent
from ._exceptions import ConfigError as ConfigError
from ._exceptions import ExecutorNotStartedError as ExecutorNotStartedError
from ._exceptions import ExecutorShutdownError as ExecutorShutdownError
from ._exceptions import MicroschedulerError as MicroschedulerError
from ._exceptions import QueueFullError as QueueFullError
from ._exceptions import StateRestoreError as StateRestoreError
from ._exceptions import StateSaveError as StateSaveError
from ._exceptions import TaskInterruptedError as TaskInterruptedError
from ._exceptions import WorkerProcessError as WorkerProcessError
from ._executor import TaskExecutor as TaskExecutor
from ._handle import TaskHandle as TaskHandle
from ._handle import TaskStatus as TaskStatus
from ._interrupt import InterruptContext as InterruptContext
from ._priority import Priority as Priority
from ._priority import WorkerInfo as WorkerInfo
from ._priority import WorkerType as WorkerType
from ._snapshots import MemorySnapshotStore as MemorySnapshotStore
from ._snapshots import SnapshotStore as SnapshotStore
from ._snapshots import SQLiteSnapshotStore as SQLiteSnapshotStore
from ._state import NoOpTaskState as NoOpTaskState
from ._state import TaskState as TaskState
from ._stats import ExecutorStatistics as ExecutorStatistics
from ._stats import QueueWait as QueueWait
from ._task import Task as Task

__all__ = (
    "ConfigError",
    "ExecutorNotStartedError",
    "ExecutorShutdownError",
    "ExecutorStatistics",
    "InterruptContext",
    "MemorySnapshotStore",
    "MicroschedulerError",
    "NoOpTaskState",
    "Priority",
    "QueueFullError",
    "QueueWait",
    "SQLiteSnapshotStore",
    "SchedulerEvent",
    "SnapshotStore",
    "StateRestoreError",
    "StateSaveError",
    "Task",
    "TaskExecutor",
    "TaskHandle",
    "TaskInterruptedError",
    "TaskState",
    "TaskStatus",
    "WorkerConfig",
    "WorkerInfo",
    "WorkerProcessError",
    "WorkerType",
)

__version__ = "0.1.0.dev0"
