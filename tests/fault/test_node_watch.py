"""A lost node noticed from its raylet, before Ray's health checks declare it dead."""

from __future__ import annotations

import time

from ray.cluster_utils import Cluster

from tune_ckpt.driver import drains
from tune_ckpt.driver.node_watch import NodeWatch


def test_a_removed_node_is_lost_while_ray_still_lists_it_alive(cluster: Cluster) -> None:
    doomed, kept = cluster.worker_nodes[0], cluster.worker_nodes[1]
    watch = NodeWatch()
    try:
        watch.watch([doomed.node_id, kept.node_id])
        cluster.remove_node(doomed, allow_graceful=False)
        found: set[str] = set()
        deadline = time.monotonic() + 30
        while not found and time.monotonic() < deadline:
            found = watch.lost()
            time.sleep(0.05)
        assert found == {doomed.node_id}
        # Ray's own notice comes after ~15 s of failed health checks.
        assert doomed.node_id in drains.alive_nodes()
    finally:
        watch.close()
