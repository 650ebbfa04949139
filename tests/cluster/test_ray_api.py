"""The public surface of microscheduler.ray."""

from __future__ import annotations

import pytest

import microscheduler.ray
from microscheduler import MicroschedulerError
from microscheduler.ray import Checkpoint, RemoteActorError, SchedulerUnavailableError

NAMES = {
    "ActorPool", "Checkpoint", "RemoteActorError", "RemoteTaskHandle", "SchedulerClient",
    "SchedulerUnavailableError", "actor_pool", "connect", "run_remote", "serve",
}  # fmt: skip


def test_all_is_sorted_and_names_exactly_the_exports() -> None:
    """``__all__`` is sorted and names exactly the module's public names."""
    assert list(microscheduler.ray.__all__) == sorted(microscheduler.ray.__all__)
    assert set(microscheduler.ray.__all__) == NAMES
    for name in NAMES:
        obj = getattr(microscheduler.ray, name)
        if isinstance(obj, type):
            assert obj.__module__ == "microscheduler.ray", name


def test_errors_belong_to_the_microscheduler_tree() -> None:
    """Both Ray errors are MicroschedulerErrors."""
    assert issubclass(RemoteActorError, MicroschedulerError)
    assert issubclass(SchedulerUnavailableError, MicroschedulerError)


def test_checkpoint_holds_bytes_only() -> None:
    """Checkpoint refuses data that is not bytes, naming the type it got."""
    assert Checkpoint(b"3").data == b"3"
    with pytest.raises(TypeError, match="^Checkpoint data must be bytes, got str$"):
        Checkpoint("3")  # type: ignore[arg-type]
