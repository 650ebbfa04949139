"""The one numeric test behind every numeric argument the package checks."""

from __future__ import annotations

from typing import TypeGuard

__all__ = ("is_number",)


def is_number(value: object) -> TypeGuard[int | float]:
    """True for an int or a float, and False for a bool (an int that no caller means as a
    number of seconds or a count). Each caller then checks its own range and says which
    argument was wrong."""
    return isinstance(value, int | float) and not isinstance(value, bool)
