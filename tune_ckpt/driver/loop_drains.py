"""The driver loop's handling of draining nodes: a node newly draining takes no new trials,
its idle actors stop, and its trials save (the most unsaved work per second of save first,
within the deadline) and move to other nodes.

A new actor's node is asked for as soon as it starts, so a trial still restoring (or
resetting) when its node drains moves too: at once, as it has nothing unsaved, and it has
not yet rolled back, so a save there would checkpoint the wrong state."""

from __future__ import annotations

import time

from tune_ckpt.driver.emergency import DrainingTrial, EmergencyAction
from tune_ckpt.driver.runner_base import Call, RunnerBase, Slot
from tune_ckpt.persistence import SavedCheckpoint


class DrainHandling(RunnerBase):
    """The loop's steps for draining nodes (see the module docstring)."""

    def _watch_drains(self) -> None:
        """A node newly draining takes no new trials, its idle actors stop, and its trials
        save (most valuable first, within the deadline) and move."""
        draining = self._drain_watch.poll()
        if draining is None:
            return
        self._placement.set_draining(frozenset(draining))
        for node in self._evacuation.new_drains(draining):
            self._actors.stop_idle(node)
            self._evacuate(node, draining[node])

    def _evacuate(self, node: str, deadline: float | None) -> None:
        slots = [s for s in self._slots.values() if s.node_id == node]
        now = time.monotonic()
        trials = []
        for slot in slots:
            latest = slot.trial.latest_checkpoint
            unsaved = not self._restoring(slot) and (
                latest is None or latest.iteration < slot.trial.iteration
            )
            trials.append(
                DrainingTrial(
                    slot.trial.trial_id,
                    unsaved_s=max(0.0, now - slot.saved_at) if unsaved else 0.0,
                    weight=max(
                        1.0, slot.resources.get("CPU", 0.0) + slot.resources.get("GPU", 0.0)
                    ),
                    save_cost_s=self._save_costs.estimate(slot.trial.trial_id),
                    has_unsaved=unsaved and slot.trial.iteration > 0,
                )
            )
        plan = self._evacuation.plan(node, trials, deadline, time.time())
        for slot in slots:
            if plan.action(slot.trial.trial_id) != EmergencyAction.SAVE:
                self._on_preempted(slot)  # at once: resumes from its last checkpoint
        self._start_evacuation_saves()

    def _restoring(self, slot: Slot) -> bool:
        """Whether the slot's actor is still being readied (probe, restore or reset under
        way): the trial's last result is not yet that of the state it will have."""
        return any(
            call.slot is slot and call.kind in ("probe", "restore", "reset")
            for call in self._inflight.values()
        )

    def _locate(self, slot: Slot) -> None:
        """Ask a newly started (or reused) actor for its node: its first step may be far
        off while it restores, and a drain meanwhile must find it."""
        self._inflight[slot.actor.node_id.remote()] = Call(slot, "node")

    def _on_located(self, slot: Slot, node_id: str) -> None:
        if slot.node_id:
            return  # a step already told
        slot.node_id = node_id
        if self._evacuation.draining(node_id) and not self._evacuation.evacuating(
            slot.trial.trial_id
        ):
            # Placed just before its node began draining, which was handled without it:
            # it is being readied, so it has nothing unsaved here; it moves at once.
            self._on_preempted(slot)

    def _start_evacuation_saves(self) -> None:
        for trial_id in self._evacuation.startable():
            slot = self._slots.get(trial_id)
            if slot is not None:
                self._inflight[slot.actor.save.remote()] = Call(slot, "evacuate")

    def _on_evacuated(self, slot: Slot, saved: SavedCheckpoint | None) -> None:
        """An emergency checkpoint is committed (None: nothing new to save, or a function
        that gave no checkpoint): the trial moves, restored from it elsewhere."""
        if slot.trial.trial_id not in self._slots:
            return  # it ended meanwhile
        self._on_saved(slot, saved)
        self._on_preempted(slot)
