"""Tasks: what to run, in which lane, with which state and key."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Awaitable, Callable
from inspect import CO_COROUTINE, CO_VARARGS
from types import FunctionType, MethodType
from typing import Any, Generic, TypeVar, overload

from ._interrupt import InterruptContext
from ._numbers import is_number
from ._priority import Priority
from ._runs_in import RunsIn, check_runs_in
from ._state import NoOpTaskState, TaskState

__all__ = (
    "MAX_KEY_LENGTH",
    "Compute",
    "StateSource",
    "Task",
    "check_priority",
    "check_timeout",
    "new_state",
)

T = TypeVar("T")

MAX_KEY_LENGTH = 256

#: A task's ``initial_state``: a state object, or a zero-argument factory called once per
#: execution so that every execution gets its own state.
StateSource = TaskState | Callable[[], TaskState]

#: ``compute(resource, state, interrupt)``: an ``async def`` runs on the event loop, a plain
#: ``def`` runs in a worker thread.
#: The state argument is typed ``Any`` so a compute may annotate its own state class.
Compute = Callable[[Any, Any, "InterruptContext"], "Awaitable[T] | T"]


def _is_async_callable(obj: object) -> bool:
    if type(obj) is FunctionType and obj.__code__.co_flags & CO_COROUTINE:
        return True  # the common case, without inspect's unwrapping
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - an instance with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _takes_three(compute: object) -> bool:
    """Whether ``compute(resource, state, interrupt)`` binds its parameters.

    Callables whose signature cannot be read (some builtins) are given the benefit of
    the doubt: they fail when they run, as before.
    """
    function, skipped = compute, 0
    if type(compute) is MethodType:
        function, skipped = compute.__func__, 1
    if type(function) is FunctionType and not function.__code__.co_kwonlyargcount:
        # The common case from the code object alone: inspect.signature costs several
        # microseconds per Task() (the ``bulk`` benchmark row builds one per job).
        code = function.__code__
        positional = code.co_argcount - skipped
        required = positional - len(function.__defaults__ or ())
        return required <= 3 and (positional >= 3 or bool(code.co_flags & CO_VARARGS))
    try:
        signature = inspect.signature(compute)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(None, None, None)
    except TypeError:
        return False
    return True


def _parameters(compute: object) -> str:
    try:
        return str(inspect.signature(compute))  # type: ignore[arg-type]
    except (TypeError, ValueError):  # pragma: no cover - _takes_three accepted these
        return "other parameters"


def check_priority(priority: object, what: str = "priority") -> Priority:
    """Return ``priority`` as a :class:`Priority`, else raise ``ValueError``.

    A plain int equal to a ``Priority`` value (``2``) is accepted and coerced, as an
    ``IntEnum`` invites; anything else (a bool, a str, an int out of range) is refused.
    """
    if priority.__class__ is Priority:
        return priority
    if isinstance(priority, int) and not isinstance(priority, bool) and 0 <= priority <= 2:
        return Priority(priority)
    raise ValueError(
        f"{what} must be a Priority (Priority.UI, Priority.LAST_EFFORT or "
        f"Priority.BACKGROUND), got {priority!r}"
    )


def check_key(key: object) -> str | None:
    """Return ``key`` if it is None or a non-empty str of at most 256 characters that
    UTF-8 can encode (a snapshot store keeps keys as text)."""
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"Task key must be a non-empty str of at most {MAX_KEY_LENGTH} characters or None, "
            f"got {key!r:.80}"
        )
    try:
        key.encode()
    except UnicodeEncodeError:
        # A lone surrogate (os.fsdecode of an undecodable file name): refused here rather
        # than at every store call, where it would fail each run of the task.
        raise ValueError(
            f"Task key {key!r:.80} cannot be encoded as UTF-8 (it holds a lone surrogate); "
            f"keys must be encodable as UTF-8: build the key from text, or from "
            f"os.fsencode(name).hex() for a file name"
        ) from None
    return key


def _check_state(state: object) -> None:
    if state is None or isinstance(state, type):
        return  # None, or a TaskState class used as a factory
    if isinstance(state, TaskState):
        return
    if callable(state):
        return  # a factory, checked when it is called
    raise TypeError(
        f"Task initial_state must satisfy TaskState (save() -> bytes and restore(data: "
        f"bytes)) or be a zero-argument factory of one, got {state!r}"
    )


def new_state(task: Task[Any]) -> TaskState:
    """The state object for one new execution of ``task``.

    Raises:
        TypeError: A factory returned something that is not a :class:`TaskState`.
    """
    source = task.initial_state
    if source is None:
        return NoOpTaskState()
    if isinstance(source, type) or not isinstance(source, TaskState):
        state = source()
        if not isinstance(state, TaskState):
            raise TypeError(
                f"task {task.name!r}: initial_state() must return a TaskState (save() -> "
                f"bytes and restore(data: bytes)), got {state!r} from {source!r}"
            )
        return state
    return source


def check_timeout(timeout: object, what: str = "timeout") -> float | None:
    """Return ``timeout`` if it is None or a non-negative number of seconds."""
    if timeout is None:
        return None
    if not is_number(timeout):
        raise TypeError(f"{what} must be a number of seconds or None, got {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{what} must be >= 0 seconds or None, got {timeout!r}")
    return float(timeout)


@dataclasses.dataclass(slots=True, kw_only=True, eq=False, init=False)
class Task(Generic[T]):
    """A unit of work for a :class:`TaskExecutor`; immutable once built.

    A task may be executed many times; each execution gets its own handle and its own
    state: ``initial_state`` is either a state object (then only one execution at a time
    may use it) or a zero-argument factory called once per execution. That state is passed
    to every run of the execution's ``compute`` and, when the executor holds a snapshot
    for the execution (``saved_state``, one saved by an earlier, preempted run, or for a
    keyed task one in the snapshot store), is restored from it just before the run.

    Tasks default to the Background lane: name ``priority=Priority.UI`` for work a user
    waits on.

    Attributes:
        name: A non-empty name, used in logs and errors.
        compute: ``compute(resource, state, interrupt)``. An ``async def`` (or an object
            whose ``__call__`` is one) runs on the event loop; a plain ``def`` runs in a
            worker thread, where ``interrupt.is_interrupted()`` is safe to poll.
        priority: The lane used when ``execute``/``submit`` name none.
        initial_state: The state passed to compute (a :class:`TaskState`, or a
            zero-argument factory of one); None means a fresh :class:`NoOpTaskState`.
        saved_state: A snapshot to restore into ``initial_state`` before the first run
            (refused without an ``initial_state``: nothing would restore it).
        timeout: Limit in seconds on one run of compute (queue time and time spent
            preempted do not count); on expiry the caller gets ``TimeoutError`` and the
            task is not run again.
        key: Identifies the work across callers and processes. While an execution of a
            key is live in an executor, executing another task with that key joins it
            (same outcome for every caller) instead of running the work twice; its
            snapshots go to the executor's snapshot store, so a new process resumes it.
        runs_in: Where the compute runs: ``"loop"`` (an ``async def``, on the event
            loop), ``"thread"`` (a plain ``def``, in a worker thread) or ``"process"``
            (a plain ``def`` that pickles, in a child process of its worker, which
            preemption pauses with ``SIGSTOP``). None follows the compute: an ``async
            def`` on the loop, a plain ``def`` in a thread.

    Raises:
        TypeError: ``name`` is not a string, ``compute`` is not callable or cannot be
            called with three positional arguments, ``initial_state`` is neither a
            :class:`TaskState` nor a factory, or the compute does not suit ``runs_in`` (a
            process compute that does not pickle).
        ValueError: ``name`` is empty, ``saved_state`` is given without an
            ``initial_state`` to restore it into, ``priority`` is not a :class:`Priority`,
            ``timeout`` is negative, ``key`` is not a non-empty str of at most 256
            characters that UTF-8 can encode (no lone surrogates), or ``runs_in`` is not
            one of its values.
    """

    __module__ = "microscheduler"

    name: str
    compute: Compute[T]
    priority: Priority = Priority.BACKGROUND
    initial_state: StateSource | None = None
    saved_state: bytes | None = None
    timeout: float | None = None
    key: str | None = None
    runs_in: RunsIn | None = None
    is_async: bool = dataclasses.field(init=False, repr=False)

    # Two signatures so type checkers infer T from an async compute's awaited value as
    # well as from a sync compute's return value.
    @overload
    def __init__(
        self: Task[T],
        *,
        name: str,
        compute: Callable[[Any, Any, InterruptContext], Awaitable[T]],
        priority: Priority | int = ...,
        initial_state: StateSource | None = ...,
        saved_state: bytes | None = ...,
        timeout: float | None = ...,
        key: str | None = ...,
        runs_in: RunsIn | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self: Task[T],
        *,
        name: str,
        compute: Callable[[Any, Any, InterruptContext], T],
        priority: Priority | int = ...,
        initial_state: StateSource | None = ...,
        saved_state: bytes | None = ...,
        timeout: float | None = ...,
        key: str | None = ...,
        runs_in: RunsIn | None = ...,
    ) -> None: ...

    def __init__(
        self,
        *,
        name: str,
        compute: Compute[T],
        priority: Priority | int = Priority.BACKGROUND,
        initial_state: StateSource | None = None,
        saved_state: bytes | None = None,
        timeout: float | None = None,
        key: str | None = None,
        runs_in: RunsIn | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"Task name must be a str, got {name!r}")
        if not name or name.isspace():
            raise ValueError("Task name must not be empty")
        if not callable(compute):
            raise TypeError(
                f"Task compute must be callable as compute(resource, state, interrupt), "
                f"got {compute!r}"
            )
        code = getattr(compute, "__code__", None) if type(compute) is FunctionType else None
        # The common case inline (exactly three positional parameters, no keyword-only):
        # a function call more per Task() shows in the ``bulk`` benchmark row.
        if (code is None or code.co_argcount != 3 or code.co_kwonlyargcount) and not (
            _takes_three(compute)
        ):
            raise TypeError(
                f"Task {name!r}: compute must take three positional parameters, "
                f"compute(resource, state, interrupt); {compute!r} takes "
                f"{_parameters(compute)}"
            )
        if priority.__class__ is not Priority:
            priority = check_priority(priority, "Task priority")
        if initial_state is not None:
            _check_state(initial_state)
        if saved_state is not None:
            if not isinstance(saved_state, bytes | bytearray | memoryview):
                raise TypeError(f"Task saved_state must be bytes or None, got {saved_state!r}")
            if initial_state is None:
                raise ValueError(
                    f"Task {name!r}: saved_state needs an initial_state to restore it into; "
                    f"pass initial_state=... (a TaskState, or a factory of one; "
                    f"NoOpTaskState for a compute that reads interrupt.snapshot itself)"
                )
            saved_state = bytes(saved_state)
        if timeout is not None:
            timeout = check_timeout(timeout, "Task timeout")
        if key is not None:
            check_key(key)
        is_async = _is_async_callable(compute)
        if runs_in is not None:
            check_runs_in(runs_in, compute, is_async)
        _set_name(self, name)
        _set_compute(self, compute)
        _set_priority(self, priority)
        _set_initial_state(self, initial_state)
        _set_saved_state(self, saved_state)
        _set_timeout(self, timeout)
        _set_key(self, key)
        _set_runs_in(self, runs_in)
        _set_is_async(self, is_async)

    # Immutable without ``frozen=True``: a frozen slotted dataclass breaks ``Task[int](...)``
    # on Python 3.11 (typing's ``__orig_class__`` assignment hits its ``super()`` call),
    # while FrozenInstanceError (an AttributeError) is what typing expects and ignores.
    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r} of a Task")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r} of a Task")

    # Pickling (Ray, multiprocessing) restores the slots without going through __setattr__.
    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _FIELD_NAMES)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(_FIELD_NAMES, state, strict=True):
            Task.__dict__[name].__set__(self, value)


# Fields are set through their slot descriptors: object.__setattr__ on a class that
# overrides __setattr__ costs several times more, on every Task().
_set_name, _set_compute, _set_priority, _set_initial_state, _set_saved_state, _set_timeout = (
    Task.__dict__[field].__set__
    for field in ("name", "compute", "priority", "initial_state", "saved_state", "timeout")
)
_set_key = Task.__dict__["key"].__set__
_set_runs_in = Task.__dict__["runs_in"].__set__
_FIELD_NAMES = tuple(field.name for field in dataclasses.fields(Task))
_set_is_async = Task.__dict__["is_async"].__set__
