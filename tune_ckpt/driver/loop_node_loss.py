"""The driver loop's handling of lost nodes, mixed into ``TrialRunner``: the nodes running
trials are watched (``driver/node_watch``), and the trials of a node found lost restart at
once, as after any failure, instead of waiting for Ray to fail their calls."""

from __future__ import annotations

import logging

from tune_ckpt.driver.runner_base import RunnerBase
from tune_ckpt.errors import NodeLostError

logger = logging.getLogger(__name__)


class NodeLossHandling(RunnerBase):
    """The loop's step for lost nodes (see the module docstring)."""

    def _watch_lost_nodes(self) -> None:
        self._node_watch.watch(slot.node_id for slot in self._slots.values())
        for node in sorted(self._node_watch.lost()):
            slots = [slot for slot in self._slots.values() if slot.node_id == node]
            logger.warning("node %s is lost (its raylet stopped answering); restarting its "
                           "%d trial(s) elsewhere", node, len(slots))  # fmt: skip
            self._placement.suspect(node)  # before the restarts: they must avoid it
            self._actors.stop_idle(node)
            for slot in slots:
                if self._slots.get(slot.trial.trial_id) is slot:
                    self._on_failure(slot, NodeLostError(node))
