"""TrialActor: the Ray actor that hosts one trial's trainable.

One ``train()`` call runs one iteration and, when a checkpoint is due (manual or periodic),
takes it in the same call, so a checkpointing step costs no extra round trip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tune_ckpt import result as keys
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.persistence import (
    CheckpointWriter,
    RestoreCandidate,
    SavedCheckpoint,
    TrialContext,
    load_into,
)
from tune_ckpt.storage.packing import PackedCheckpoint
from tune_ckpt.trainable import FunctionTrainable, Trainable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutcome:
    """One iteration's result, and the checkpoint taken after it if one was due."""

    result: dict[str, Any]
    saved: SavedCheckpoint | None
    finished: bool


def checkpoint_due(result: dict[str, Any], frequency: int) -> bool:
    """Manual (``should_checkpoint``) or periodic (every ``frequency`` iterations)."""
    if result.get(keys.SHOULD_CHECKPOINT):
        return True
    iteration = result.get(keys.TRAINING_ITERATION, 0)
    return frequency > 0 and iteration > 0 and iteration % frequency == 0


class TrialActor:
    """Hosts one trainable in a Ray actor; the runner wraps it with ``ray.remote``."""

    def __init__(self, trainable_cls: type[Trainable], config: dict[str, Any],
                 ctx: TrialContext) -> None:  # fmt: skip
        self._cls = trainable_cls
        self._ctx = ctx
        self._writer = CheckpointWriter(ctx)
        self._trainable = trainable_cls(config, ctx.trial_id)
        self._last_saved: int | None = None

    def node_id(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def shares_storage(self) -> bool:
        return self._writer.shared

    def train(self) -> StepOutcome:
        result = self._trainable.train()
        trainable = self._trainable
        if isinstance(trainable, FunctionTrainable):
            if trainable.finished:
                return StepOutcome(result, None, True)
            due = checkpoint_due(result, self._ctx.checkpoint_config.checkpoint_frequency)
            saved = None
            if trainable.reported_checkpoint is not None or (due and trainable.can_checkpoint):
                saved = self.save()
            return StepOutcome(result, saved, bool(result.get(keys.DONE)))
        saved = None
        if checkpoint_due(result, self._ctx.checkpoint_config.checkpoint_frequency):
            saved = self.save()
        return StepOutcome(result, saved, bool(result.get(keys.DONE)))

    def save(self) -> SavedCheckpoint | None:
        """Checkpoint the current state; None if this iteration is already saved or a
        function trainable gave no checkpoint to save."""
        trainable = self._trainable
        if self._last_saved == trainable.iteration:
            return None
        if isinstance(trainable, FunctionTrainable):
            checkpoint = trainable.take_checkpoint()
            if checkpoint is None:
                return None
            saved = self._writer.save_checkpoint(checkpoint, trainable.state())
        else:
            saved = self._writer.save_trainable(trainable)
        self._last_saved = saved.iteration
        return saved

    def restore(
        self, candidates: list[RestoreCandidate], packed: PackedCheckpoint | None = None
    ) -> RestoreCandidate | None:
        """Restore from ``packed`` or the newest verified candidate; returns the one used,
        or None when none verifies (the trial then starts from scratch)."""
        opened = self._writer.open(candidates, packed)
        if opened is None:
            return None
        checkpoint, candidate = opened
        load_into(self._trainable, checkpoint, candidate.state)
        self._last_saved = candidate.state.iteration
        return candidate

    def restore_checkpoint(self, checkpoint: Checkpoint, iteration: int) -> None:
        """Restore from a Checkpoint object (``validate_save_restore``)."""
        from tune_ckpt.trainable import TrainableState

        load_into(self._trainable, checkpoint, TrainableState(iteration))
        self._last_saved = iteration

    def reset(self, config: dict[str, Any], ctx: TrialContext) -> bool:
        """Reuse this actor for another trial, if the trainable supports it."""
        if not self._trainable.reset(config, ctx.trial_id):
            return False
        self._ctx = ctx
        self._writer = CheckpointWriter(ctx)
        self._last_saved = None
        return True

    def stop(self) -> None:
        self._trainable.stop()
