"""One real local Ray cluster for every test in this directory (a session fixture).

Ray starts once (``ray.init(num_cpus=2)``, no dashboard) and is shut down cleanly at the end
of the session, leaving no Ray process behind. The actors and helpers the tests use live in
``_actors.py``, which is pickled by value so Ray's workers need no access to this directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import _actors
import pytest
import ray
import ray.cloudpickle
from _cluster import NAMESPACE


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """Start the test session's Ray cluster; yield its address for other drivers."""
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
