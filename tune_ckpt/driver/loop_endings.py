"""The driver loop's endings, mixed into ``TrialRunner``: a trial finishing (its actor kept
for the next trial or stopped), giving its actor back after a failure or preemption, and the
shutdown of the sweep."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from tune_ckpt.driver.actors import kill, terminate
from tune_ckpt.driver.loop_failures import StopSweep
from tune_ckpt.driver.runner_base import RunnerBase, Slot
from tune_ckpt.errors import StorageError, TrialError
from tune_ckpt.storage.retry import attempt_once
from tune_ckpt.trial import TrialStatus

logger = logging.getLogger(__name__)


class EndingHandling(RunnerBase):
    """The loop's steps for ending trials and the sweep (see the module docstring)."""

    def _finish(self, slot: Slot, status: TrialStatus) -> None:
        trial = slot.trial
        self._drop_calls(slot)
        self._release_exploits(slot, finished=True)
        trial.set_status(status)
        self._source.completed(trial)  # before the journal entry that saves its state
        slot.files.flush()
        self._book.journal(trial)
        self._slots.pop(trial.trial_id, None)
        self._placement.give(slot.resources)
        more = self._pending or self._source.open
        reuse = self._tune_config.reuse_actors is not False and more
        self._evacuation.forget(trial.trial_id)
        draining = self._placement.avoid()
        if status == TrialStatus.TERMINATED and reuse and slot.node_id not in draining:
            self._actors.keep_idle(slot.actor, slot.resources, slot.node_id)
        else:
            terminate(slot.actor)
        self._progress.finished(trial)
        self._events.trial_ended(trial)
        if status == TrialStatus.TERMINATED:
            self._apply(self._sched.completed(trial))

    def _save_states(self) -> None:
        """After each journal flush: the scheduler's and the searcher's state."""
        self._sched.save_state()
        self._source.save_state()

    def _vacate(self, slot: Slot, end_actor: Callable[[Any], None]) -> None:
        """The trial gives its actor and resources back (``end_actor``: kill or terminate)."""
        self._drop_calls(slot)
        self._release_exploits(slot, finished=False)
        end_actor(slot.actor)
        self._slots.pop(slot.trial.trial_id, None)
        self._placement.give(slot.resources)
        self._evacuation.forget(slot.trial.trial_id)
        slot.files.flush()

    def _release(self, slot: Slot, refresh: bool) -> None:
        """Forget a trial's actor after it died or was preempted, and kill what is left."""
        slot.trial.goodput.interrupted(time.monotonic())  # until it steps again
        self._vacate(slot, kill)
        self._placement.refresh(force=refresh)
        self._start_evacuation_saves()  # its lane on a draining node frees

    def _drop_calls(self, slot: Slot) -> None:
        for ref, call in list(self._inflight.items()):
            if call.slot is slot:
                del self._inflight[ref]

    def _shutdown(self) -> None:
        """Stop every actor still held. Only fail_fast ends the unfinished trials; a driver
        interrupted any other way (SIGTERM, Ctrl-C, an error) leaves them unfinished in the
        journal, so Tuner.restore resumes them. Actors are stopped first, whatever storage
        does; a storage failure while flushing is logged, so the error that ended the sweep
        is the one raised."""
        ended_by_fail_fast = isinstance(self._abort, TrialError | StopSweep)
        for slot in list(self._slots.values()):
            terminate(slot.actor)
        self._actors.stop_idle()
        self._drain_watch.close()
        self._node_watch.close()
        for slot in list(self._slots.values()):
            self._storage_step_at_shutdown(slot.files.flush)
            if ended_by_fail_fast and slot.trial.status == TrialStatus.RUNNING:
                slot.trial.set_status(TrialStatus.TERMINATED)
                self._journal.record(slot.trial)
        for trial in self._pending:
            if ended_by_fail_fast and trial.status == TrialStatus.PENDING:
                trial.set_status(TrialStatus.TERMINATED)
                self._journal.record(trial)
        self._slots.clear()
        self._inflight.clear()
        self._storage_step_at_shutdown(self._journal.flush)
        self._storage_step_at_shutdown(self._book.deleter.close)

    def _storage_step_at_shutdown(self, step: Any) -> None:
        # After storage failed past its retries, one attempt each: a long outage must not
        # hold the shutdown for a retry budget per trial.
        once = attempt_once() if isinstance(self._abort, StorageError) else contextlib.nullcontext()
        try:
            with once:
                step()
        except StorageError as exc:
            logger.error("while ending the sweep: %s", exc)
            if self._abort is None:
                self._abort = exc
