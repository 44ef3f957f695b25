"""Watching for nodes that are going away: Ray's draining nodes read once a second, and the
spot-notice watchers (``RunConfig(spot=...)``) kept on every worker node."""

from __future__ import annotations

import logging
import time
from typing import Any

import ray
from ray.exceptions import RayError

from tune_ckpt import spot
from tune_ckpt.config import SpotConfig
from tune_ckpt.driver import drains
from tune_ckpt.driver.actors import kill
from tune_ckpt.errors import DrainError

logger = logging.getLogger(__name__)

POLL_S = 1.0
"""How often the draining nodes are read: a drain is noticed within this long."""
SPOT_WATCHERS_S = 10.0
"""How often nodes that joined get a spot-notice watcher."""


class DrainWatch:
    """The draining nodes as of the last read, and the spot watchers."""

    def __init__(self, spot_config: SpotConfig | None) -> None:
        self._spot = spot_config if spot_config is not None and spot_config.enabled else None
        self._read_at = 0.0
        self._readable = True
        self._watchers: dict[str, Any] = {}  # node -> its spot-notice watcher
        self._watchers_at = 0.0

    def poll(self) -> dict[str, float | None] | None:
        """The draining nodes (node -> deadline, epoch seconds) when a read is due, else
        None. A Ray whose private drain API changed is reported once and read no more:
        preemptions still arrive as SIGTERM or as actors dying."""
        now = time.monotonic()
        if not self._readable or now - self._read_at < POLL_S:
            return None
        self._read_at = now
        self._start_watchers(now)
        try:
            draining = drains.draining_nodes()
        except DrainError as exc:
            logger.warning("cannot watch for draining nodes, carrying on without: %s", exc)
            self._readable = False
            return None
        for node in draining:
            watcher = self._watchers.pop(node, None)
            if watcher is not None:  # a drained node exits only once nothing runs there
                kill(watcher)
        return draining

    def _start_watchers(self, now: float) -> None:
        """A watcher on every node but the driver's (usually not a spot instance;
        ``tune-ckpt spot-watch`` covers it if it is)."""
        if self._spot is None or now - self._watchers_at < SPOT_WATCHERS_S:
            return
        self._watchers_at = now
        driver_node = str(ray.get_runtime_context().get_node_id())
        try:
            started = spot.start_watchers(self._spot, skip={*self._watchers, driver_node})
        except (DrainError, RayError) as exc:
            logger.warning("cannot start spot-notice watchers: %s", exc)
            return
        self._watchers.update(started)

    def close(self) -> None:
        for watcher in self._watchers.values():
            kill(watcher)
        self._watchers.clear()
