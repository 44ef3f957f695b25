"""Moving trials off draining nodes: which drains are new, each node's emergency plan, and
which planned saves may start now (at most ``lanes`` per node at once, in priority order).

Pure bookkeeping: the loop reads the draining nodes from Ray, calls the actors and tells
this what happened.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable

from tune_ckpt.driver.emergency import (
    DrainingTrial,
    EmergencyPlan,
    EmergencyPolicy,
    plan_emergency,
)

logger = logging.getLogger(__name__)


class Evacuation:
    """The drains a sweep has seen and the emergency saves under way."""

    def __init__(self, policy: EmergencyPolicy | None = None) -> None:
        self.policy = policy or EmergencyPolicy()
        self._known: set[str] = set()  # draining nodes already handled
        self._queued: dict[str, collections.deque[str]] = {}  # node -> saves not started
        self._running: dict[str, set[str]] = {}  # node -> saves under way
        self._node_of: dict[str, str] = {}  # trial -> its draining node

    def new_drains(self, draining: Iterable[str]) -> list[str]:
        """The nodes in ``draining`` not seen before; nodes no longer draining (gone) are
        forgotten."""
        current = set(draining)
        new = sorted(current - self._known)
        self._known = current
        return new

    def plan(
        self, node_id: str, trials: list[DrainingTrial], deadline: float | None, now: float
    ) -> EmergencyPlan:
        """Plan ``node_id``'s trials and queue its saves."""
        plan = plan_emergency(trials, deadline, now, self.policy)
        self._queued[node_id] = collections.deque(plan.save_order)
        self._running.setdefault(node_id, set())
        for trial in trials:
            self._node_of[trial.trial_id] = node_id
        logger.warning(
            "node %s is draining (%s): %d trial(s) to save before it goes (%s), %d to move at "
            "once, %d to resume from their last checkpoint",
            node_id[:12],
            f"{plan.budget_s:.1f} s for saves" if trials else "no trials",
            len(plan.saves),
            ", ".join(plan.save_order) or "none",
            len(plan.moves),
            len(plan.stops),
        )
        return plan

    def draining(self, node_id: str) -> bool:
        """Whether ``node_id`` is among the draining nodes seen at the last poll."""
        return node_id in self._known

    def evacuating(self, trial_id: str) -> bool:
        """Whether the trial is on a draining node (its actor takes no more steps)."""
        return trial_id in self._node_of

    def startable(self) -> list[str]:
        """Queued saves that may start now, in priority order, and mark them started."""
        ready = []
        for node, queue in self._queued.items():
            running = self._running[node]
            while queue and len(running) < self.policy.lanes:
                trial_id = queue.popleft()
                running.add(trial_id)
                ready.append(trial_id)
        return ready

    def forget(self, trial_id: str) -> None:
        """The trial left its draining node (saved and moved, ended, or failed): its lane
        frees for the next save."""
        node = self._node_of.pop(trial_id, None)
        if node is None:
            return
        self._running.get(node, set()).discard(trial_id)
        queue = self._queued.get(node)
        if queue is not None and trial_id in queue:
            queue.remove(trial_id)
