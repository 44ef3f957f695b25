"""TrialRunner: the driver loop.

It places trials on actors as resources allow, waits on all of their in-flight calls at once
(``ray.wait``, never polling), routes results, commits what workers send through the object
store, applies retention, restarts failed trials from their latest verified checkpoint and
journals what happened.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time

import ray
from ray.exceptions import (
    RayError,
)

from tune_ckpt import result as keys
from tune_ckpt.actor import StepOutcome
from tune_ckpt.config import RunConfig, TuneConfig
from tune_ckpt.driver.actors import ActorPool
from tune_ckpt.driver.bookkeeping import CheckpointBook
from tune_ckpt.driver.decisions import (
    StartupLosses,
    StopKeyError,
    StopRule,
)
from tune_ckpt.driver.drain_watch import POLL_S, DrainWatch
from tune_ckpt.driver.emergency import SaveCostTracker
from tune_ckpt.driver.evacuation import Evacuation
from tune_ckpt.driver.events import TrialEvents
from tune_ckpt.driver.loop_drains import DrainHandling
from tune_ckpt.driver.loop_endings import EndingHandling
from tune_ckpt.driver.loop_exploits import ExploitHandling, ExploitState
from tune_ckpt.driver.loop_failures import FailureHandling, StopSweep
from tune_ckpt.driver.loop_node_loss import NodeLossHandling
from tune_ckpt.driver.loop_restores import RestoreHandling
from tune_ckpt.driver.loop_scheduling import SchedulerHandling
from tune_ckpt.driver.node_watch import PROBE_S, NodeWatch
from tune_ckpt.driver.placement import Placement, ray_resources
from tune_ckpt.driver.runner_base import Call, Slot
from tune_ckpt.driver.scheduling import Scheduling
from tune_ckpt.driver.trial_source import TrialSource
from tune_ckpt.driver.unheard import adopt_unheard
from tune_ckpt.errors import StorageError
from tune_ckpt.goodput import useful_seconds
from tune_ckpt.journal import Journal
from tune_ckpt.persistence import SavedCheckpoint, TrialContext
from tune_ckpt.progress import Progress
from tune_ckpt.result_files import ResultFiles
from tune_ckpt.schedulers import SaveCheckpoint, SchedulerAction, SchedulerDecision
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trainable import Trainable, resource_request
from tune_ckpt.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)


class TrialRunner(
    FailureHandling,
    NodeLossHandling,
    DrainHandling,
    SchedulerHandling,
    ExploitHandling,
    RestoreHandling,
    EndingHandling,
):
    """Runs a set of trials of one trainable to completion."""

    def __init__(
        self,
        trainable_cls: type[Trainable],
        trials: list[Trial],
        experiment: StorageLocation,
        run_config: RunConfig,
        tune_config: TuneConfig,
        journal: Journal,
        marker: str,
        progress: Progress,
        scheduling: Scheduling | None = None,
        source: TrialSource | None = None,
    ) -> None:
        self._cls = trainable_cls
        self._trials = trials
        self._experiment = experiment
        self._sched = scheduling or Scheduling(
            None, trials, experiment, tune_config.metric, tune_config.mode
        )
        self._book = CheckpointBook(
            experiment,
            run_config.checkpoint_config,
            journal,
            progress,
            on_journal=self._save_states,
            trials=trials,
        )
        self._source = source or TrialSource(None, trials, experiment, journal, self._sched, "", "")
        self._exploits = ExploitState()
        self._stop = StopRule(run_config.stop)
        self._run_config = run_config
        self._tune_config = tune_config
        self._ckpt_config = run_config.checkpoint_config
        self._failure_config = run_config.failure_config
        self._journal = journal
        self._marker = marker
        self._owners = {}
        self._progress = progress
        self._placement = Placement()
        self._inflight: dict[ray.ObjectRef, Call] = {}
        self._slots: dict[str, Slot] = {}
        # Trials that may start: PENDING, and PAUSED ones a scheduler may resume.
        self._pending: collections.deque[Trial] = collections.deque(
            t for t in trials if t.status in (TrialStatus.PENDING, TrialStatus.PAUSED)
        )
        self._actors = ActorPool(trainable_cls)
        self._abort: BaseException | None = None
        self._startup_losses = StartupLosses()
        self._evacuation = Evacuation()
        # A trial that never saved is guessed at 1 s: guessing high plans no save at all,
        # while a save that overruns costs only what stopping it at once would have.
        self._save_costs = SaveCostTracker(default_s=1.0)
        self._drain_watch = DrainWatch(run_config.spot)
        self._node_watch = NodeWatch(silence_s=run_config.failure_config.node_silence_s)
        self._events = TrialEvents(run_config, tune_config, trials, experiment)

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        """Run until every trial is finished (or fail_fast ends the sweep)."""
        self._resume_awaited()  # driver/loop_exploits: exploits a driver crash interrupted
        self._placement.refresh(force=True)
        self._placement.check_fits_cluster((t.trial_id, self._request(t)) for t in self._pending)
        self._events.experiment_start()
        try:
            while (self._pending or self._inflight or self._source.open) and self._abort is None:
                self._events.step_begin()
                self._watch_drains()
                self._watch_lost_nodes()
                try:
                    self._launch_pending()
                except StorageError as exc:
                    self._abort = exc
                    break
                if not self._inflight and not self._pending:
                    self._source.stalled()  # nothing runs that could change its mind
                    continue
                if not self._inflight:
                    # Nothing runs and nothing fits: wait for the cluster to change.
                    if self._pending:
                        trial = self._pending[0]
                        self._placement.report_unplaceable(trial.trial_id, self._request(trial))
                    time.sleep(self._placement.interval())
                    self._placement.refresh(force=True)
                    self._events.step_end()
                    continue
                ready, _ = ray.wait(
                    list(self._inflight),
                    num_returns=1,
                    # Lost nodes are noticed within a probe, drains within a poll.
                    timeout=min(self._placement.interval() if self._pending else POLL_S, PROBE_S),
                )
                for ref in ready:
                    self._dispatch(ref, self._inflight.pop(ref))
                self._events.step_end()
        finally:
            self._shutdown()
            self._events.experiment_end()
        if self._abort is not None and not isinstance(self._abort, StopSweep):
            raise self._abort

    def _request(self, trial: Trial) -> dict[str, float]:
        return ray_resources(resource_request(self._cls, trial.config))

    def _launch_pending(self) -> None:
        limit = self._tune_config.max_concurrent_trials
        while self._pending or self._source.open:
            if limit is not None and len(self._slots) >= limit:
                return
            trial = self._next_trial() if self._pending else None
            if trial is None:
                if self._source.add_trial(self._pending):
                    continue  # a new trial from the searcher: the scheduler may choose it
                return
            request = self._request(trial)
            if not self._placement.fits(request):
                self._placement.refresh()
                if not self._placement.fits(request):
                    return
            self._pending.remove(trial)
            self._start(trial, request)

    def _context(self, trial: Trial) -> TrialContext:
        return TrialContext(
            trial_id=trial.trial_id,
            trial_dir=trial.trial_dir,
            experiment=self._experiment,
            transfer=self._run_config.checkpoint_transfer,
            marker=self._marker,
            checkpoint_config=self._ckpt_config,
            # A scheduler decides on every result: one step per call then.
            stop_thresholds=None if self._sched.active else self._stop.thresholds,
            trial_name=trial.name,
            resources=self._request(trial),
            owner=self._owners.get(trial.trial_id, ""),
        )

    def _start(self, trial: Trial, request: dict[str, float]) -> None:
        if not self._claim_owner(trial):
            return
        self._placement.take(request)
        if trial.num_failures:
            # Looked for now rather than when the failure was handled: a lost node's worker
            # may commit after the watch noticed the loss. Unreadable: restore from the records.
            with contextlib.suppress(StorageError):
                if adopt_unheard(trial, self._book.store, self._book.experiment):
                    self._book.journal(trial)
        files = ResultFiles(self._experiment, trial.trial_dir)
        if trial.last_result and not trial.checkpoints and trial.exploit is None:
            # A restart with nothing to restore begins at iteration 1 again; so does its history.
            trial.goodput.rolled_back(trial.last_result, 0.0)
            files.truncate_after(0)
            trial.last_result, trial.history_floor = {}, 0
        # An idle actor of its shape runs it after a reset; one that must restore then loads
        # its checkpoint (or its donor's) into the reset trainable (see _on_reset).
        reusable = self._actors.take_idle(request)
        if reusable is not None:
            slot = Slot(trial, reusable, request, files, launched_for=trial.exploit)
            self._slots[trial.trial_id] = slot
            trial.set_status(TrialStatus.RUNNING)
            self._events.trial_started(trial)
            self._locate(slot)
            use_reset_config = self._tune_config.reuse_actors is True
            config, context = self._launch_config(trial), self._context(trial)
            self._inflight[reusable.reset.remote(config, context, use_reset_config)] = Call(
                slot, "reset"
            )
            return
        self._actors.stop_idle()  # idle actors of another shape hold what it may need
        self._start_fresh(trial, request, files)

    def _start_fresh(self, trial: Trial, request: dict[str, float], files: ResultFiles) -> None:
        actor = self._actors.start(
            request, self._launch_config(trial), self._context(trial), self._placement.avoid()
        )
        slot = Slot(trial, actor, request, files, launched_for=trial.exploit)
        self._slots[trial.trial_id] = slot
        trial.set_status(TrialStatus.RUNNING)
        self._events.trial_started(trial)
        self._locate(slot)
        try:
            self._book.prepare_start(trial)
        except StorageError as exc:
            # Part of restoring the trial: a failure of the trial, not of the sweep.
            self._on_failure(slot, exc)
            return
        if trial.checkpoints or trial.exploit is not None:
            self._inflight[actor.shares_storage.remote()] = Call(slot, "probe")
        else:
            self._progress.trial_started(trial, None)
            self._train(slot)

    def _train(self, slot: Slot) -> None:
        if self._evacuation.evacuating(slot.trial.trial_id):
            return  # its node is draining: it saves and moves, or has moved already
        if self._exploit_takes(slot):
            return  # a PBT exploit restores the donor's checkpoint first
        slot.trial.goodput.resumed(time.monotonic())
        self._inflight[slot.actor.train_batch.remote()] = Call(slot, "train")

    # -- dispatching results ---------------------------------------------------------------

    def _dispatch(self, ref: ray.ObjectRef, call: Call) -> None:
        slot = call.slot
        if self._slots.get(slot.trial.trial_id) is not slot:
            return  # a call to an actor the trial no longer holds (it ended or moved)
        try:
            value = ray.get(ref)
        except RayError as exc:
            self._on_failure(slot, exc)
            return
        if call.kind == "node":
            self._on_located(slot, value)  # not a sign the actor ran anything of the trial
            return
        slot.answered = True
        self._startup_losses.answered(slot.trial.trial_id)
        try:
            if call.kind == "train":
                self._on_steps(slot, value)
            elif call.kind == "save_end":
                if not self._awaits_save(slot, value, "save_end"):
                    self._on_saved(slot, value)
                    self._finish(slot, TrialStatus.TERMINATED)
            elif call.kind == "probe":
                self._restore(slot, bool(value))
            elif call.kind == "restore":
                self._on_restored(slot, value)
            elif call.kind == "reset":
                self._on_reset(slot)
            elif call.kind == "evacuate":
                self._on_evacuated(slot, value)
            elif call.kind == "save":
                self._on_saved(slot, value)
            elif call.kind == "pause":
                self._on_paused(slot, value)
            elif call.kind == "exploit":
                self._on_exploited(slot, value)
        except StopKeyError as exc:
            self._abort = exc
        except RayError as exc:
            self._on_failure(slot, exc)
        except StorageError as exc:
            # The driver's own storage work (commit, results, journal) failed after the
            # storage retries: the sweep ends here, cleanly, and Tuner.restore resumes it.
            logger.error("storage failed on the driver; ending the sweep: %s", exc)
            self._abort = exc

    def _on_steps(self, slot: Slot, outcomes: list[StepOutcome]) -> None:
        """Record a batch of steps in order; what happens next follows the last one (the
        worker ends a batch at any step that needs a decision)."""
        trial = slot.trial
        for outcome in outcomes:
            slot.node_id = outcome.node_id
            result = outcome.result
            if outcome.finished and result.get(keys.TRAINING_ITERATION, 0) == trial.iteration:
                # A function returned: its last report is already recorded.
                trial.last_result = {**trial.last_result, keys.DONE: True}
                self._end(slot)
                return
            new = result.get(keys.TRAINING_ITERATION, 0) > trial.iteration
            callback_asks_checkpoint = False
            if new:
                result[keys.NUM_FAILURES] = trial.num_failures
                result[keys.NUM_PREEMPTIONS] = trial.num_preemptions
                result.update(trial.goodput.fields(useful_seconds(result)))
                trial.last_result = result
                slot.files.add(result)
                self._source.result(trial, result)
                self._progress.result(trial, result)
                callback_asks_checkpoint = self._events.trial_result(trial, result)
            decision, actions = SchedulerDecision.CONTINUE, list[SchedulerAction]()
            if new and self._sched.active and not outcome.finished:
                # Heard before the checkpoint of this step is journaled, so the state saved
                # with that entry includes it: a trial restored from it never replays it.
                decision, actions = self._sched.result(trial, result)
            if callback_asks_checkpoint and outcome.saved is None:
                actions.append(SaveCheckpoint(trial.trial_id))
            with self._book.batch():  # the scheduler's state is saved with its actions
                if outcome.saved is not None:
                    self._on_saved(slot, outcome.saved)
                self._apply(actions)
            if outcome.preempted:
                self._on_preempted(slot)
                return
            if (
                decision == SchedulerDecision.STOP
                or outcome.finished
                or self._stop.reached(trial.trial_id, result)
            ):
                self._end(slot)  # before a pause: a trial that reached its stop ends
                return
            if decision == SchedulerDecision.PAUSE:
                self._pause(slot)
                return
        self._train(slot)

    def _end(self, slot: Slot) -> None:
        """The trial stops: checkpoint at end if asked (and not already), then finish."""
        for call in self._inflight.values():
            if call.slot is slot and call.kind == "save":
                # A save asked for this result (a scheduler's, a callback's) is under way:
                # it is the last one, recorded before the trial finishes.
                call.kind = "save_end"
                return
        latest = slot.trial.latest_checkpoint
        already = latest is not None and latest.iteration == slot.trial.iteration
        if self._ckpt_config.checkpoint_at_end and not already and slot.trial.iteration > 0:
            self._inflight[slot.actor.save.remote()] = Call(slot, "save_end")
        else:
            self._finish(slot, TrialStatus.TERMINATED)

    def _on_saved(self, slot: Slot, saved: SavedCheckpoint | None) -> None:
        if saved is not None:
            started = time.monotonic()
            self._book.record_saved(slot.trial, slot.files, saved)
            # What a save costs: the worker's part, and the driver's commit of a packed one.
            cost = saved.seconds + (time.monotonic() - started if saved.packed else 0.0)
            self._save_costs.record(slot.trial.trial_id, cost)
            slot.trial.goodput.checkpointed(cost)
            slot.saved_at = time.monotonic()
            self._events.checkpoint_committed(slot.trial, saved.path)
        self._resolve_donor(slot.trial)  # exploits waiting for its checkpoint
