"""The driver loop's side of a scheduler's decisions: which waiting trial starts next, a
pause (a checkpoint, then the resources go back), and the actions a scheduler asks for
other trials (stop one, checkpoint one, exploit: see ``loop_exploits``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tune_ckpt.driver.actors import terminate
from tune_ckpt.driver.runner_base import Call, RunnerBase, Slot
from tune_ckpt.persistence import SavedCheckpoint
from tune_ckpt.schedulers import Exploit, SaveCheckpoint, SchedulerAction, StopTrial
from tune_ckpt.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)


class SchedulerHandling(RunnerBase):
    """The loop's steps for scheduler decisions (see the module docstring)."""

    def _next_trial(self) -> Trial | None:
        if not self._sched.active:
            return self._pending[0]
        chosen, actions = self._sched.next_trial(set(self._slots))
        self._apply(actions)
        if chosen is not None and any(t is chosen for t in self._pending):
            return chosen
        if not self._slots and not self._inflight:
            # Nothing runs that could change the scheduler's mind: run the first waiting
            # trial rather than wait forever.
            logger.warning(
                "%s chose no trial while nothing runs; starting %s",
                self._sched.name,
                self._pending[0].trial_id,
            )
            return self._pending[0]
        return None

    def _apply(self, actions: list[SchedulerAction]) -> None:
        """Carry out what a scheduler asked for trials other than by its decision: the
        journal entries of one batch in one flush, with the scheduler's state after it (a
        driver crash keeps all of a synchronous PBT perturbation's exploits or none)."""
        if actions:
            with self._book.batch():
                self._apply_each(actions)

    def _apply_each(self, actions: list[SchedulerAction]) -> None:
        for action in actions:
            slot = self._slots.get(action.trial_id)
            if isinstance(action, SaveCheckpoint):
                if slot is not None and slot.trial.status == TrialStatus.RUNNING:
                    # Submitted before its next step: the checkpoint is of this result.
                    self._inflight[slot.actor.save.remote()] = Call(slot, "save")
            elif isinstance(action, StopTrial):
                self._stop_by_scheduler(action.trial_id, slot)
            elif isinstance(action, Exploit):
                self._apply_exploit(action)  # driver/loop_exploits

    def _stop_by_scheduler(self, trial_id: str, slot: Slot | None) -> None:
        if slot is not None:
            if slot.trial.status == TrialStatus.PAUSED:
                slot.stop_after_pause = True  # once its pause checkpoint is committed
            else:
                self._end(slot)
            return
        for trial in [t for t in self._pending if t.trial_id == trial_id]:
            self._pending.remove(trial)
            self._conclude(trial, TrialStatus.TERMINATED, self._sched.removed)

    def _pause(self, slot: Slot) -> None:
        """PAUSE: a checkpoint first, then the resources go back; it resumes from exactly
        that checkpoint, on any node, when the scheduler chooses it."""
        slot.trial.set_status(TrialStatus.PAUSED)
        self._inflight[slot.actor.save.remote()] = Call(slot, "pause")

    def _awaits_save(self, slot: Slot, saved: SavedCheckpoint | None, kind: str) -> bool:
        """A save meaning ``kind`` ("pause", "save_end") answered None ("this iteration is
        saved already") while another save of the slot is in flight: that one holds the
        checkpoint, and may be answered after this one. It takes the meaning (True)."""
        if saved is not None:
            return False
        for call in self._inflight.values():
            if call.slot is slot and call.kind == "save":
                call.kind = kind
                return True
        return False

    def _on_paused(self, slot: Slot, saved: SavedCheckpoint | None) -> None:
        trial = slot.trial
        if self._awaits_save(slot, saved, "pause"):
            return
        self._on_saved(slot, saved)
        latest = trial.latest_checkpoint
        self._vacate(slot, self._keep_or_terminate(slot))
        if latest is None or latest.iteration < trial.iteration:
            trial.error = (
                f"trial {trial.trial_id} cannot be paused by {self._sched.name}: its trainable "
                "gave no checkpoint (class API: implement save_checkpoint; function API: pass "
                "a Checkpoint or a checkpoint callable to report())"
            )
            logger.error("%s", trial.error)
            self._conclude(trial, TrialStatus.ERROR, self._sched.errored)
        elif slot.stop_after_pause:
            self._conclude(trial, TrialStatus.TERMINATED, self._sched.removed)
        else:
            self._book.journal(trial)
            self._pending.append(trial)

    def _keep_or_terminate(self, slot: Slot) -> Callable[[Any], None]:
        """How a paused trial gives its actor back: healthy (its save answered), it goes to
        the idle pool for the next trial of its shape (the paused one itself, or another,
        restoring into it) unless actors are not reused or its node is draining."""
        node_id = slot.node_id
        if self._tune_config.reuse_actors is False or node_id in self._placement.avoid():
            return terminate
        return lambda actor: self._actors.keep_idle(actor, slot.resources, node_id)

    def _conclude(
        self, trial: Trial, status: TrialStatus, hook: Callable[[Trial], list[SchedulerAction]]
    ) -> None:
        """A trial that holds no actor ends: journaled, shown, and the scheduler told."""
        trial.set_status(status)
        self._source.completed(trial)  # before the journal entry that saves its state
        self._book.journal(trial)
        self._progress.finished(trial)
        self._events.trial_ended(trial)
        self._apply(hook(trial))
