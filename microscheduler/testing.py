"""Helpers for testing code that uses microscheduler.

``sync_computes_running()`` lets a test (or a fixture) check that no sync compute is still
executing in a worker thread, for example after ``shutdown()``::

    from microscheduler.testing import sync_computes_running

    await executor.shutdown()
    assert sync_computes_running() == 0
"""

from __future__ import annotations

from ._context import sync_computes_running

__all__ = ("sync_computes_running",)
