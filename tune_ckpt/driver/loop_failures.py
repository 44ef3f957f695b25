"""The driver loop's handling of failures and preemptions: a preempted trial moves without
counting a failure; a failed one is retried from its latest checkpoint while its budget
allows, else ends in ERROR (or ends the sweep under fail_fast); an actor lost before it ever
ran is the cluster's loss, not the trial's."""

from __future__ import annotations

import logging
import traceback

from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

from tune_ckpt.config import FailureConfig
from tune_ckpt.driver.decisions import AfterFailure, StartupLosses, after_failure
from tune_ckpt.driver.runner_base import RunnerBase, Slot
from tune_ckpt.errors import NodeLostError, TrialError
from tune_ckpt.trial import TrialStatus

logger = logging.getLogger(__name__)


class StopSweep(Exception):
    """fail_fast=True: end the sweep quietly after the first error."""


class FailureHandling(RunnerBase):
    """The loop's steps for failures and preemptions (see the module docstring)."""

    _failure_config: FailureConfig
    _startup_losses: StartupLosses
    _abort: BaseException | None

    def _on_preempted(self, slot: Slot) -> None:
        """Reschedule a preempted trial from its latest checkpoint; not a failure."""
        trial = slot.trial
        self._release(slot, refresh=True)
        trial.num_preemptions += 1
        self._progress.preempted(trial)
        trial.set_status(TrialStatus.PENDING)
        self._book.journal(trial)
        self._pending.appendleft(trial)
        self._events.trial_recovering(trial)

    def _lost_before_start(self, slot: Slot, exc: BaseException) -> bool:
        """An actor that never ran lost to the cluster (placed on a node that was dying but
        not yet declared dead), rather than a failure of the trial. Bounded, so a trainable
        whose process dies while starting still uses up its failures."""
        if isinstance(exc, NodeLostError):
            return not slot.answered and self._startup_losses.forgive(slot.trial.trial_id)
        if slot.answered or not isinstance(exc, RayActorError) or isinstance(exc, RayTaskError):
            return False
        if getattr(exc, "actor_init_failed", False):
            return False
        return self._startup_losses.forgive(slot.trial.trial_id)

    def _on_failure(self, slot: Slot, exc: BaseException) -> None:
        if isinstance(exc, ActorDiedError) and getattr(exc, "preempted", False):
            # The node was drained for preemption before the worker could report it.
            self._on_preempted(slot)
            return
        trial = slot.trial
        if isinstance(exc, ActorUnavailableError) and slot.node_id:
            self._placement.suspect(slot.node_id)
        if self._lost_before_start(slot, exc):
            logger.warning("trial %s: its new actor was lost before it started (%s); "
                           "rescheduling", trial.trial_id, type(exc).__name__)  # fmt: skip
            self._release(slot, refresh=True)
            trial.set_status(TrialStatus.PENDING)
            self._pending.appendleft(trial)
            self._events.trial_recovering(trial)
            return
        error = describe(exc)
        self._release(slot, refresh=isinstance(exc, RayActorError | NodeLostError))
        trial.num_failures += 1
        decision = after_failure(trial, self._failure_config)
        retry = decision == AfterFailure.RETRY
        self._progress.failed(trial, error, retry, has_checkpoint=bool(trial.checkpoints))
        if retry:
            trial.set_status(TrialStatus.PENDING)
            self._book.journal(trial)
            self._pending.appendleft(trial)
            self._events.trial_recovering(trial)
            return
        trial.error = error
        self._conclude(trial, TrialStatus.ERROR, self._sched.errored)
        if decision == AfterFailure.RAISE:
            self._abort = TrialError(error)
        elif decision == AfterFailure.STOP_SWEEP:
            self._abort = StopSweep()


def describe(exc: BaseException) -> str:
    if isinstance(exc, RayTaskError | NodeLostError):
        return str(exc)
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
