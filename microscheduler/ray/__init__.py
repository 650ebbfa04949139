"""Ray integration (install the ``ray`` extra): priority lanes and preemption for Ray actors.

Three pieces, usable apart:

* :func:`actor_pool` — a resource factory giving each executor worker its own Ray actor
  (for example one per GPU), killed at shutdown and restarted by Ray if it dies.
* :func:`run_remote` — inside a compute, run an async-generator actor method as a Ray
  streaming call: yielded :class:`Checkpoint` values are saved, an interrupt cancels the
  remote call (``ray.cancel``) and waits until it has stopped, and a rerun resumes from
  the last checkpoint.
* :func:`serve` / :func:`connect` — host the executor in a named, detached Ray actor and
  submit to it from any process of the cluster with the executor's own API (in the Ray
  namespace ``"microscheduler"`` unless both name another).

The core package never imports this module, nor Ray.
"""

from __future__ import annotations

try:
    import ray as _ray  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError("microscheduler.ray needs Ray: pip install 'microscheduler[ray]'") from exc

from ._client import SchedulerClient as SchedulerClient
from ._client import connect as connect
from ._client import serve as serve
from ._errors import RemoteActorError as RemoteActorError
from ._errors import SchedulerUnavailableError as SchedulerUnavailableError
from ._handle import RemoteTaskHandle as RemoteTaskHandle
from ._pool import ActorPool as ActorPool
from ._pool import actor_pool as actor_pool
from ._remote import Checkpoint as Checkpoint
from ._remote import run_remote as run_remote

__all__ = (
    "ActorPool",
    "Checkpoint",
    "RemoteActorError",
    "RemoteTaskHandle",
    "SchedulerClient",
    "SchedulerUnavailableError",
    "actor_pool",
    "connect",
    "run_remote",
    "serve",
)
