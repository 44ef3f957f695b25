"""The driver loop's restores, mixed into ``TrialRunner``: a trial starting again (under a new
owner token, ``storage/owner``) from its checkpoints (on shared storage the worker reads
them; otherwise the driver reads, verifies and sends them packed), in a fresh actor or an
idle one reset for it, and what follows a restore or an actor's reset."""

from __future__ import annotations

import logging

from tune_ckpt.driver.runner_base import Call, RunnerBase, Slot
from tune_ckpt.errors import StorageError
from tune_ckpt.persistence import RestoreOutcome
from tune_ckpt.storage.owner import claim
from tune_ckpt.trial import Trial

logger = logging.getLogger(__name__)


class RestoreHandling(RunnerBase):
    """The loop's steps for restores (see the module docstring)."""

    def _claim_owner(self, trial: Trial) -> bool:
        """A trial that ran before gets a new owner token before its new actor exists, so
        no earlier actor of it (one this driver gave up on, on a lost or drained node) can
        commit over the new one's checkpoints (``storage/owner``). Called before the look
        for unheard checkpoints: what an old actor published before it is seen there.
        False when the storage failed: the sweep ends, the trial still pending."""
        ran_before = trial.iteration or trial.num_failures or trial.num_preemptions
        if not (ran_before or trial.exploit is not None or trial.trial_id in self._owners):
            return True
        try:
            self._owners[trial.trial_id] = claim(self._experiment, trial.trial_dir)
        except StorageError as exc:
            logger.error("storage failed on the driver; ending the sweep: %s", exc)
            self._pending.appendleft(trial)
            self._abort = exc
            return False
        return True

    def _restore(self, slot: Slot, shares_storage: bool) -> None:
        if self._restore_exploit(slot):
            return
        candidates = self._book.candidates(slot.trial)
        if shares_storage:
            ref = slot.actor.restore.remote(candidates)
            self._inflight[ref] = Call(slot, "restore")
            return
        for candidate in candidates:
            try:
                packed = self._book.store.read_verified_packed(
                    candidate.path, candidate.manifest_digest
                )
            except StorageError as exc:
                # Unreadable now is not corrupt: fail the trial (records and history kept),
                # so a later attempt restores from the same candidates.
                self._on_failure(slot, exc)
                return
            if packed is not None:
                ref = slot.actor.restore.remote([candidate], packed)
                self._inflight[ref] = Call(slot, "restore")
                return
        self._on_restored(slot, RestoreOutcome(None))

    def _on_restored(self, slot: Slot, outcome: RestoreOutcome) -> None:
        trial = slot.trial
        for reason in outcome.skipped:
            logger.warning("trial %s: skipping checkpoint %s", trial.trial_id, reason)
        used = outcome.used
        iteration = used.state.iteration if used is not None else 0
        if used is None:
            logger.warning(
                "trial %s: no checkpoint verifies; starting from scratch", trial.trial_id
            )
        trial.goodput.rolled_back(trial.last_result, used.state.time_total_s if used else 0.0)
        self._book.roll_back(trial, slot.files, iteration)
        self._progress.trial_started(trial, self._experiment.uri(used.path) if used else None)
        self._events.trial_restored(trial, used is not None)
        self._train(slot)

    def _on_reset(self, slot: Slot) -> None:
        """A reused actor holds a fresh trainable of the trial (or one reset through
        ``reset_config``): a trial with checkpoints, or an exploit to carry out, restores
        into it as into a fresh actor; a new trial starts."""
        trial = slot.trial
        if trial.checkpoints or trial.exploit is not None:
            try:
                self._book.prepare_start(trial)
            except StorageError as exc:
                self._on_failure(slot, exc)  # part of restoring: the trial's failure
                return
            self._inflight[slot.actor.shares_storage.remote()] = Call(slot, "probe")
            return
        self._progress.trial_started(trial, None)
        self._train(slot)
