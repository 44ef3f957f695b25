"""Real node drains on a multi-node cluster, through ``tune_ckpt.driver.drains``: the one
module wrapping Ray's private drain API, so this is the test that fails the day Ray
changes it."""

from __future__ import annotations

import time

import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tune_ckpt.driver import drains
from tune_ckpt.errors import DrainError


@ray.remote(num_cpus=1)
class Counter:
    def __init__(self) -> None:
        self.count = 0

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    def bump(self) -> int:
        self.count += 1
        return self.count


def _worker_nodes(cluster: Cluster) -> list[str]:
    return [node.node_id for node in cluster.worker_nodes]


def _on(node_id: str) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def _listed(node_id: str, deadline: float | None) -> dict[str, float | None]:
    """The draining nodes once ``node_id`` shows ``deadline`` there, which the runner needs
    within its 1 s poll (Ray 2.60: at once; 2.49: after about 0.1 s)."""
    give_up = time.monotonic() + 1.0
    while True:
        listed = drains.draining_nodes()
        if node_id in listed:
            shown = listed[node_id]
            if shown is None or deadline is None:
                if shown is deadline:
                    return listed
            elif abs(shown - deadline) < 1e-3:
                return listed
        if time.monotonic() > give_up:
            raise AssertionError(f"{node_id} not listed with {deadline} within 1 s: {listed}")
        time.sleep(0.01)


def test_a_drained_node_is_listed_with_its_deadline_and_its_actor_keeps_running(
    cluster: Cluster,
) -> None:
    drained, other = _worker_nodes(cluster)
    counter = Counter.options(scheduling_strategy=_on(drained)).remote()  # type: ignore[attr-defined]
    assert ray.get(counter.node.remote()) == drained
    assert ray.get(counter.bump.remote()) == 1
    assert drains.draining_nodes() == {}

    deadline = round(time.time() + 60, 3)
    drains.drain_node(drained, deadline, reason="test: preempted")
    assert list(_listed(drained, deadline)) == [drained]

    # A drain enforces nothing: the actor on the node keeps serving.
    assert ray.get(counter.bump.remote(), timeout=10) == 2
    # Nothing new is placed there: an actor that may only run on the drained node fails.
    pinned = Counter.options(scheduling_strategy=_on(drained)).remote()  # type: ignore[attr-defined]
    with pytest.raises(ray.exceptions.ActorUnschedulableError):
        ray.get(pinned.node.remote(), timeout=10)

    # Draining again replaces the deadline; "no deadline" reads as None.
    later = round(deadline + 30, 3)
    drains.drain_node(drained, later)
    _listed(drained, later)
    keeper = Counter.options(scheduling_strategy=_on(other)).remote()  # type: ignore[attr-defined]
    ray.get(keeper.node.remote())  # busy, so the drain does not make it exit at once
    drains.drain_node(other, None, gcs_address=cluster.address)
    assert _listed(other, None) == {drained: pytest.approx(later, abs=1e-3), other: None}


def test_ids_the_gcs_would_accept_silently_are_refused(cluster: Cluster) -> None:
    # The GCS answers "accepted" for an id of no node and for a malformed one, and drains
    # nothing: the wrapper must not pass either on.
    with pytest.raises(DrainError, match="56 lowercase hex"):
        drains.drain_node("zz", time.time() + 10)
    with pytest.raises(DrainError, match="not an alive node"):
        drains.drain_node("ab" * 28, time.time() + 10)
    assert drains.draining_nodes() == {}
    assert set(drains.alive_nodes()) == {cluster.head_node.node_id, *_worker_nodes(cluster)}
    with pytest.raises(DrainError, match="3 alive nodes on"):  # one host, three nodes
        drains.local_node_id()
