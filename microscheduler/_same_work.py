"""Same work: whether a submit may join the live execution of its key."""

from __future__ import annotations

import functools
import inspect
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._task import Task

__all__ = ("same_work",)


def _same_compute(first: object, second: object) -> bool:
    """Whether two computes are the same code: equal objects, partials of the same code
    with equal arguments, methods of it on the same object, or copies of one function
    (a compute sent to another process arrives as a new function object)."""
    try:
        first, second = inspect.unwrap(first), inspect.unwrap(second)  # type: ignore[arg-type]
    except ValueError:  # a __wrapped__ chain that loops: compare the objects themselves
        pass
    if first is second:
        return True
    if type(first) is not type(second):
        return False
    if isinstance(first, functools.partial):
        assert isinstance(second, functools.partial)
        return (
            _same_compute(first.func, second.func)
            and _equal(first.args, second.args)
            and _equal(first.keywords, second.keywords)
        )
    if isinstance(first, MethodType):
        assert isinstance(second, MethodType)
        return first.__self__ is second.__self__ and _same_compute(first.__func__, second.__func__)
    if isinstance(first, FunctionType):
        assert isinstance(second, FunctionType)
        return (
            first.__qualname__ == second.__qualname__
            and first.__code__ == second.__code__
            and _equal(_cells(first), _cells(second))  # closures made by one factory
            and _equal(first.__defaults__, second.__defaults__)
        )
    return _equal(first, second)


def _cells(function: FunctionType) -> tuple[object, ...]:
    try:
        return tuple(cell.cell_contents for cell in function.__closure__ or ())
    except ValueError:  # an empty cell: compare by identity instead
        return (function,)


def _equal(first: object, second: object) -> bool:
    try:
        return bool(first == second)
    except Exception:  # an __eq__ that raises (arrays): not provably the same
        return False


def same_work(first: Task[Any], second: Task[Any]) -> bool:
    """Whether ``second`` may join a live execution of ``first`` (same name, same compute)."""
    return first is second or (
        first.name == second.name and _same_compute(first.compute, second.compute)
    )
