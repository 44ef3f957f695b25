"""Where trials may run: the resources of the live nodes a new actor may use, what the running
trials hold of them, and the nodes to keep new actors off (suspect, draining).

Ray is asked for its nodes here and nowhere else in the driver; the loop only asks whether a
request fits and which nodes to avoid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import ray

logger = logging.getLogger(__name__)

_RESOURCE_NAMES = {"cpu": "CPU", "gpu": "GPU"}
REFRESH_S = 0.5
# After a node was lost or began draining, its trials wait for capacity elsewhere (often a
# replacement node): the nodes are re-read this often then, so a new node is used at once.
AFTER_LOSS_REFRESH_S = 0.1
AFTER_LOSS_S = 60.0
# Re-reading the nodes never takes more than this share of the driver's time (a large
# cluster's node list takes tens of milliseconds to read).
REFRESH_SHARE = 0.1
SUSPECT_S = 60.0
UNPLACEABLE_WARN_S = 30.0


def refresh_interval(since_loss_s: float | None, read_s: float) -> float:
    """Seconds between two reads of the nodes: short for ``AFTER_LOSS_S`` after a node was
    lost or began draining (``since_loss_s``; None when none was), never so short that the
    reads (``read_s`` each) take more than ``REFRESH_SHARE`` of the time."""
    recent = since_loss_s is not None and since_loss_s < AFTER_LOSS_S
    return max(AFTER_LOSS_REFRESH_S if recent else REFRESH_S, read_s / REFRESH_SHARE)


def ray_resources(request: dict[str, float]) -> dict[str, float]:
    """Our resource names (``cpu``, ``gpu``, custom) as Ray's (``CPU``, ``GPU``, custom)."""
    return {_RESOURCE_NAMES.get(k, k): v for k, v in request.items()}


class Placement:
    """The cluster's capacity for trials, as seen by one driver.

    ``total`` counts the live nodes new actors may use; ``used`` what this driver's actors
    hold. A node whose actor just became unreachable (how a lost node first shows, while Ray
    may still count it alive) is *suspect* for up to ``SUSPECT_S``: its resources do not
    count and new actors are kept off it. A *draining* node (going away at a deadline) is
    treated the same until it is gone.
    """

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self._refreshed = 0.0
        self._suspects: dict[str, float] = {}  # node id -> when its actor became unreachable
        self._draining: frozenset[str] = frozenset()
        self._unplaceable_warned = 0.0
        self._lost_at: float | None = None  # when a node was last lost or began draining
        self._read_s = 0.0  # how long the last read of the nodes took

    def interval(self) -> float:
        """Seconds between two reads of the nodes now (see ``refresh_interval``)."""
        since = None if self._lost_at is None else time.monotonic() - self._lost_at
        return refresh_interval(since, self._read_s)

    def refresh(self, force: bool = False) -> None:
        started = time.monotonic()
        if not force and started - self._refreshed <= self.interval():
            return
        total: dict[str, float] = {}
        for node in ray.nodes():
            excluded = node.get("NodeID") in self._suspects or node.get("NodeID") in self._draining
            if node.get("Alive") and not excluded:
                for key, value in node.get("Resources", {}).items():
                    total[key] = total.get(key, 0.0) + float(value)
        self.total = total
        self._refreshed = time.monotonic()
        self._read_s = self._refreshed - started

    def fits(self, request: dict[str, float]) -> bool:
        return all(
            self.used.get(k, 0.0) + v <= self.total.get(k, 0.0) + 1e-9
            for k, v in request.items()
            if v > 0
        )

    def take(self, request: dict[str, float]) -> None:
        for k, v in request.items():
            self.used[k] = self.used.get(k, 0.0) + v

    def give(self, request: dict[str, float]) -> None:
        for k, v in request.items():
            self.used[k] = max(0.0, self.used.get(k, 0.0) - v)

    def suspect(self, node_id: str) -> None:
        """An actor on ``node_id`` became unreachable."""
        self._suspects[node_id] = self._lost_at = time.monotonic()
        self.avoid()  # prunes the list

    def set_draining(self, nodes: frozenset[str]) -> None:
        """The nodes being drained now (Ray forgets a drained node once it is dead)."""
        if nodes != self._draining:
            if nodes - self._draining:
                self._lost_at = time.monotonic()
            self._draining = nodes
            self.refresh(force=True)

    def avoid(self) -> list[str]:
        """Nodes to keep new actors off: draining ones, and suspects (forgotten once Ray
        declares them dead, or after ``SUSPECT_S``)."""
        if not self._suspects:
            return sorted(self._draining)
        now = time.monotonic()
        dead = {n["NodeID"] for n in ray.nodes() if not n.get("Alive", True)}
        self._suspects = {
            node: since
            for node, since in self._suspects.items()
            if node not in dead and now - since < SUSPECT_S
        }
        return sorted(set(self._suspects) | self._draining)

    def check_fits_cluster(self, requests: Iterable[tuple[str, dict[str, float]]]) -> None:
        """Raise ValueError for a trial that asks more than the whole cluster has."""
        for trial_id, request in requests:
            if self.fits(request) or self.used:
                continue
            missing = {k: v for k, v in request.items() if v > self.total.get(k, 0.0)}
            if missing:
                raise ValueError(
                    f"trial {trial_id} requests {request}, more than the whole cluster has "
                    f"({self.total}); lower the request with tune_ckpt.with_resources or add "
                    "nodes"
                )

    def report_unplaceable(self, trial_id: str, request: dict[str, float]) -> None:
        """Nothing runs and the next trial does not fit what the live nodes offer (a node was
        lost): say what it waits for, every so often, rather than wait in silence."""
        now = time.monotonic()
        if now - self._unplaceable_warned < UNPLACEABLE_WARN_S:
            return
        short = {k: v for k, v in request.items() if v > self.total.get(k, 0.0) + 1e-9}
        if not short:
            return
        self._unplaceable_warned = now
        logger.warning(
            "trial %s waits for %s, more than the cluster's live nodes offer (%s); it "
            "starts when nodes with those resources join",
            trial_id,
            short,
            {k: self.total.get(k, 0.0) for k in short},
        )
