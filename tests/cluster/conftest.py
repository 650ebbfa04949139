"""One real local Ray cluster for every test in this directory (a session fixture).

The cluster tests need Ray, which the ``dev`` extra does not bring (it is large): install
the ``cluster`` extra (``pip install -e '.[cluster]'``). Without Ray the directory is
skipped with that reason, unless ``MICROSCHEDULER_REQUIRE_RAY=1`` (set by CI's cluster
step), which makes a missing Ray an error instead.

Ray starts once (``ray.init(num_cpus=2)``, no dashboard) and is shut down cleanly at the end
of the session, leaving no Ray process behind. The actors and helpers the tests use live in
``_actors.py``, which is pickled by value so Ray's workers need no access to this directory.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cluster import NAMESPACE


def _ray_missing() -> bool:
    if os.environ.get("MICROSCHEDULER_REQUIRE_RAY") == "1":
        return False
    try:
        importlib.import_module("ray")
    except ImportError:
        return True
    return False


RAY_MISSING = _ray_missing()
SKIP_REASON = "Ray is not installed: pip install -e '.[cluster]' to run the cluster tests"


class _ModuleNeedingRay(pytest.Module):
    """A test module of this directory collected without Ray: reported as skipped."""

    def collect(self) -> Any:
        pytest.skip(SKIP_REASON)


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    """Without Ray, each test module is skipped (its imports need Ray), naming the fix."""
    if RAY_MISSING:
        return _ModuleNeedingRay.from_parent(parent, path=module_path)
    return None


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """Start the test session's Ray cluster; yield its address for other drivers."""
    import _actors
    import ray
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(_actors)
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        namespace=NAMESPACE,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield context.address_info["address"]
    finally:
        ray.shutdown()


@pytest.fixture
def unique_name(ray_address: str) -> str:
    """A fresh actor name, so that no test sees another test's actors."""
    return f"t-{uuid.uuid4().hex[:10]}"
