"""The trial actors' processes: starting one where a trial may run, keeping finished ones
idle for the next trial of the same shape, and stopping them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError

from tune_ckpt.actor import TrialActor
from tune_ckpt.persistence import TrialContext
from tune_ckpt.shared_objects import put_objects
from tune_ckpt.trainable import Trainable


@dataclass
class _Idle:
    actor: Any
    resources: dict[str, float]
    node_id: str


class ActorPool:
    """Starts trial actors and holds the idle ones."""

    def __init__(self, trainable_cls: type[Trainable]) -> None:
        self._remote: Any = ray.remote(TrialActor)
        # Pickled once and passed by value, not ray.put: a put object is also fetched from
        # nodes that cached it, and after a node is lost Ray keeps listing it as a source
        # until the node is declared dead, so a replacement actor could stall ~10 s in a
        # failed fetch. Ray sends arguments under 100 KiB inline; a larger class becomes a
        # new object owned by this driver at each actor start.
        from ray import cloudpickle

        self._trainable_blob = cloudpickle.dumps(trainable_cls)
        # with_parameters' objects: put once here (Ray is up: this is fit time) and held
        # while trials may start; each actor gets the references (nested in a dict, so Ray
        # passes them as borrowed references instead of inlining the objects).
        self._shared = put_objects(trainable_cls)
        self._idle: list[_Idle] = []

    def start(
        self,
        request: dict[str, float],
        config: dict[str, Any],
        context: TrialContext,
        avoid: Iterable[str] = (),
    ) -> Any:
        """A new actor holding ``request`` (Ray's resource names), kept off ``avoid``."""
        options: dict[str, Any] = {
            "num_cpus": request.get("CPU", 0.0),
            "num_gpus": request.get("GPU", 0.0),
            "max_restarts": 0,
        }
        avoid = sorted(avoid)
        if avoid:
            options["label_selector"] = {"ray.io/node-id": f"!in({','.join(avoid)})"}
        custom = {k: v for k, v in request.items() if k not in ("CPU", "GPU", "memory")}
        if custom:
            options["resources"] = custom
        if "memory" in request:
            options["memory"] = request["memory"]
        return self._remote.options(**options).remote(
            self._trainable_blob, config, context, self._shared or None
        )

    def keep_idle(self, actor: Any, resources: dict[str, float], node_id: str) -> None:
        self._idle.append(_Idle(actor, resources, node_id))

    def take_idle(self, request: dict[str, float]) -> Any | None:
        """An idle actor of exactly this shape, if there is one."""
        for index, idle in enumerate(self._idle):
            if idle.resources == request:
                del self._idle[index]
                return idle.actor
        return None

    def stop_idle(self, node_id: str | None = None) -> None:
        """Stop the idle actors (on ``node_id`` only, when given): they hold resources a
        trial of another shape may need, or keep a draining node from exiting."""
        stopping = [i for i in self._idle if node_id is None or i.node_id == node_id]
        self._idle = [i for i in self._idle if i not in stopping]
        for idle in stopping:
            terminate(idle.actor)


def terminate(actor: Any) -> None:
    """Let the trainable clean up, then end the actor's process."""
    with contextlib.suppress(RayError):  # already dead: nothing to stop
        actor.stop.remote()
        actor.__ray_terminate__.remote()


def kill(actor: Any) -> None:
    """End the actor's process at once (it died, or its trial moves)."""
    with contextlib.suppress(RayError):  # the actor may be gone already
        ray.kill(actor, no_restart=True)
