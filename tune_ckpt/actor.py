"""TrialActor: the Ray actor that hosts one trial's trainable.

One ``train()`` call runs one iteration and, when a checkpoint is due (manual or periodic),
takes it in the same call, so a checkpointing step costs no extra round trip.

Preemption: SIGTERM (what spot instances and Kubernetes send before they stop a node) only
sets a flag, since the signal may arrive in the middle of a step, when the trainable's state
is inconsistent. At the next safe point, the end of the step under way or the start of the
next ``train()`` call, the actor takes an emergency checkpoint and reports the preemption
instead of a normal step, and the runner reschedules the trial without counting a failure.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from tune_ckpt import context
from tune_ckpt import result as keys
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import stop_value_reached
from tune_ckpt.metrics import lookup
from tune_ckpt.persistence import (
    CheckpointWriter,
    RestoreCandidate,
    RestoreOutcome,
    SavedCheckpoint,
    TrialContext,
    load_into,
)
from tune_ckpt.shared_objects import bind_objects
from tune_ckpt.storage.packing import PackedCheckpoint
from tune_ckpt.trainable import FunctionTrainable, Trainable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutcome:
    """One iteration's result, and the checkpoint taken after it if one was due."""

    result: dict[str, Any]
    saved: SavedCheckpoint | None
    finished: bool
    preempted: bool = False
    node_id: str = ""


def checkpoint_due(result: dict[str, Any], frequency: int) -> bool:
    """Manual (``should_checkpoint``) or periodic (every ``frequency`` iterations)."""
    if result.get(keys.SHOULD_CHECKPOINT):
        return True
    iteration = result.get(keys.TRAINING_ITERATION, 0)
    return frequency > 0 and iteration > 0 and iteration % frequency == 0


class TrialActor:
    """Hosts one trainable in a Ray actor; the runner wraps it with ``ray.remote``."""

    def __init__(self, trainable: type[Trainable] | bytes, config: dict[str, Any],
                 ctx: TrialContext, shared: dict[str, Any] | None = None) -> None:  # fmt: skip
        """``trainable``: the class, or the class pickled with cloudpickle (the runner's
        way of sending it, see ``TrialRunner``). ``shared``: the object references of
        ``with_parameters``' objects, fetched here once for every trial this actor runs."""
        from ray import cloudpickle

        trainable_cls: type[Trainable] = (
            cloudpickle.loads(trainable) if isinstance(trainable, bytes) else trainable
        )
        if shared:
            bind_objects(trainable_cls, shared)
        self._cls = trainable_cls
        self._ctx = ctx
        self._writer = CheckpointWriter(ctx)
        context.activate(ctx)  # before the trainable exists: its setup() may read it
        self._trainable = trainable_cls(config, ctx.trial_id)
        self._last_saved: int | None = None
        self._preempted = threading.Event()
        self._last_result: dict[str, Any] = {}
        self._deferred_error: Exception | None = None
        self._unsaved_results: list[dict[str, Any]] = []
        self._node_id = self.node_id()
        self._install_sigterm_handler()

    def _install_sigterm_handler(self) -> None:
        def on_sigterm(signum: int, frame: Any) -> None:
            logger.warning("trial %s: SIGTERM received, checkpointing at the next safe point",
                           self._ctx.trial_id)  # fmt: skip
            self._preempted.set()

        try:
            signal.signal(signal.SIGTERM, on_sigterm)
        except ValueError:  # not the main thread (a threaded actor): keep Ray's handler
            logger.warning(
                "trial %s: cannot handle SIGTERM off the main thread", self._ctx.trial_id
            )

    def _preemption_outcome(self) -> StepOutcome:
        """Emergency checkpoint (if the trainable can give one), reported as a preemption."""
        saved = self.save()
        result = dict(self._last_result)
        return StepOutcome(result, saved, False, preempted=True)

    def node_id(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def shares_storage(self) -> bool:
        return self._writer.shared

    def train(self) -> StepOutcome:
        if self._preempted.is_set():
            return self._preemption_outcome()
        result = self._trainable.train()
        self._last_result = result
        self._unsaved_results.append(result)
        trainable = self._trainable
        if isinstance(trainable, FunctionTrainable) and trainable.finished:
            return StepOutcome(result, None, True, node_id=self._node_id)
        due = checkpoint_due(result, self._ctx.checkpoint_config.checkpoint_frequency)
        if isinstance(trainable, FunctionTrainable):
            # A reported Checkpoint is always saved; a checkpoint callable only when due.
            due = trainable.reported_checkpoint is not None or (due and trainable.can_checkpoint)
        saved = self.save() if due else None
        if self._preempted.is_set():
            saved = saved or self.save()
            return StepOutcome(result, saved, False, preempted=True, node_id=self._node_id)
        return StepOutcome(result, saved, bool(result.get(keys.DONE)), node_id=self._node_id)

    def train_batch(self) -> list[StepOutcome]:
        """Steps back to back for up to ``batch_seconds``, stopping early at a checkpoint,
        the end of the trial, a preemption or a stop threshold (checkpointing at the end there
        when asked), or whenever the driver must decide: a callable ``stop``, or a result
        missing a stop key. The results and checkpoints are those of one step per call,
        delivered in bulk."""
        if self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            raise error
        deadline = time.monotonic() + self._ctx.batch_seconds
        outcomes: list[StepOutcome] = []
        while True:
            try:
                outcome = self.train()
            except Exception as exc:
                if not outcomes:
                    raise
                # Deliver the steps that did happen; the error follows with the next call.
                self._deferred_error = exc
                return outcomes
            outcomes.append(outcome)
            if outcome.finished or outcome.preempted:
                return outcomes
            stop = self._stop_reached(outcome.result)
            if stop is True and self._ctx.checkpoint_config.checkpoint_at_end:
                saved = outcome.saved or self.save()
                outcomes[-1] = dataclasses.replace(outcome, saved=saved)
            # A checkpoint ends the batch: if this worker died later in it, the driver would
            # otherwise not know the checkpoint and restore from an older one.
            if stop is not False or outcomes[-1].saved or time.monotonic() >= deadline:
                return outcomes

    def _stop_reached(self, result: dict[str, Any]) -> bool | None:
        """True or False when this worker can tell; None when only the driver can."""
        if result.get(keys.DONE):
            return True
        thresholds = self._ctx.stop_thresholds
        if thresholds is None:
            return None
        for key, threshold in thresholds.items():
            value = lookup(result, key)
            if value is None:
                return None
            if stop_value_reached(value, threshold):
                return True
        return False

    def save(self) -> SavedCheckpoint | None:
        """Checkpoint the current state; None if this iteration is already saved or a
        function trainable gave no checkpoint to save."""
        trainable = self._trainable
        if self._last_saved == trainable.iteration:
            return None
        results = tuple(self._unsaved_results)
        started = time.monotonic()
        if isinstance(trainable, FunctionTrainable):
            checkpoint = trainable.take_checkpoint()
            if checkpoint is None:
                return None
            saved = self._writer.save_checkpoint(checkpoint, trainable.state(), results)
        else:
            saved = self._writer.save_trainable(trainable, results)
        self._last_saved = saved.iteration
        self._unsaved_results.clear()
        return dataclasses.replace(saved, seconds=time.monotonic() - started)

    def restore(
        self, candidates: list[RestoreCandidate], packed: PackedCheckpoint | None = None
    ) -> RestoreOutcome:
        """Restore from ``packed`` or the newest verified candidate; reports the one used
        (None when none verifies: the trial then starts from scratch) and those skipped.
        A checkpoint that cannot be read now raises StorageError: the trial fails and is
        restored later from the same candidates."""
        checkpoint, outcome = self._writer.open(candidates, packed)
        if checkpoint is None or outcome.used is None:
            return outcome
        load_into(self._trainable, checkpoint, outcome.used.state)
        self._last_saved = outcome.used.state.iteration
        self._unsaved_results.clear()
        return outcome

    def exploit(
        self,
        config: dict[str, Any],
        candidate: RestoreCandidate,
        packed: PackedCheckpoint | None = None,
        replace_trainable: bool = True,
        use_reset_config: bool = False,
    ) -> RestoreOutcome | None:
        """PBT: load another trial's checkpoint ``candidate`` into this actor, with
        ``config``. The checkpoint is verified (by the driver when it sent it ``packed``)
        before anything changes: when it is bad, the outcome says so (``used`` None) and the
        trainable goes on untouched on its own state. ``replace_trainable``: the trainable
        running now gets ``config`` (through ``reset_config`` when asked and supported,
        else as a fresh instance in this process); False for an actor started with it.
        None: this worker cannot read the storage, and the driver must send it packed."""
        if packed is None and not self._writer.shared:
            return None
        checkpoint, outcome = self._writer.open([candidate], packed)
        if checkpoint is None or outcome.used is None:
            return outcome
        if replace_trainable and not (
            use_reset_config and self._trainable.reset(config, self._ctx.trial_id)
        ):
            self._trainable.stop()
            self._trainable = self._cls(config, self._ctx.trial_id)
        load_into(self._trainable, checkpoint, candidate.state)
        self._last_saved = candidate.state.iteration
        self._unsaved_results.clear()
        self._last_result = {}
        return outcome

    def restore_checkpoint(self, checkpoint: Checkpoint, iteration: int) -> None:
        """Restore from a Checkpoint object (``validate_save_restore``)."""
        from tune_ckpt.trainable import TrainableState

        load_into(self._trainable, checkpoint, TrainableState(iteration))
        self._last_saved = iteration

    def reset(self, config: dict[str, Any], ctx: TrialContext, use_reset_config: bool) -> bool:
        """Run another trial in this actor: in the same trainable instance through
        ``reset_config`` when asked and supported, else in a fresh instance. Nothing of the
        previous trial carries over: not its results, its unsaved history, an error it still
        owed the driver, nor a preemption flag (the runner does not reuse the actor of a
        preempted trial, and the next trial must not start by reporting one)."""
        self._unsaved_results.clear()
        self._last_result = {}
        self._deferred_error = None
        self._preempted.clear()
        context.activate(ctx)
        if not (use_reset_config and self._trainable.reset(config, ctx.trial_id)):
            self._trainable.stop()
            self._trainable = self._cls(config, ctx.trial_id)
        self._ctx = ctx
        self._writer = CheckpointWriter(ctx)
        self._last_saved = None
        return True

    def stop(self) -> None:
        self._trainable.stop()
