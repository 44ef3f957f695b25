"""Worker-side checkpoint persistence: the two transfer paths of DESIGN.md section 3.

* ``shared``: the worker sees the experiment's storage and commits its checkpoints itself
  (on local disk the trainable writes straight into the staged folder, so nothing is copied).
* ``object_store``: the worker packs the checkpoint into one buffer and returns it; Ray's
  object store carries it to the driver, which commits it. Restores come back the same way.

``auto`` decides per worker by looking for a marker file the driver wrote into the
experiment folder: a worker that sees it shares the driver's storage.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig, TransferMode
from tune_ckpt.errors import StorageError
from tune_ckpt.storage import paths
from tune_ckpt.storage.commit import CheckpointStore, Committed
from tune_ckpt.storage.lease import MARKER_PREFIX as MARKER_PREFIX  # where it used to live
from tune_ckpt.storage.lease import require
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.packing import PackedCheckpoint
from tune_ckpt.trainable import FunctionTrainable, Trainable, TrainableState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialContext:
    """What a trial's actor needs to know about where and how to checkpoint. Picklable."""

    trial_id: str
    trial_dir: str
    experiment: StorageLocation
    transfer: TransferMode
    marker: str
    checkpoint_config: CheckpointConfig
    stop_thresholds: dict[str, float] | None = None
    """``RunConfig.stop`` when it is a dict, so the worker can tell when to stop; None when
    stopping is decided by a callable in the driver (one step per call then)."""
    batch_seconds: float = 0.1
    """How long one call may keep stepping before it reports back."""


@dataclass(frozen=True)
class SavedCheckpoint:
    """A checkpoint the worker took: committed by the worker (``path`` set), or packed for
    the driver to commit (``packed`` set)."""

    iteration: int
    state: TrainableState
    path: str
    manifest_digest: str = ""
    packed: PackedCheckpoint | None = None
    results: tuple[dict[str, Any], ...] = ()  # since the previous checkpoint, for the manifest

    @property
    def committed(self) -> bool:
        return self.packed is None


@dataclass(frozen=True)
class RestoreCandidate:
    """A committed checkpoint a worker may restore from, with the state it resumes."""

    path: str
    manifest_digest: str
    state: TrainableState


def shares_storage(ctx: TrialContext) -> bool:
    """Whether this worker persists checkpoints itself (see module docs)."""
    if ctx.transfer == "shared":
        return True
    if ctx.transfer == "object_store":
        return False
    try:
        return ctx.experiment.is_file(ctx.marker)
    except StorageError:
        return False


class CheckpointWriter:
    """Saves and loads one trial's checkpoints on the worker."""

    def __init__(self, ctx: TrialContext) -> None:
        self.ctx = ctx
        self.store = CheckpointStore(ctx.experiment)
        self.shared = shares_storage(ctx)

    def _relative(self, iteration: int) -> str:
        return paths.join(self.ctx.trial_dir, paths.checkpoint_dirname(iteration))

    def save_trainable(
        self, trainable: Trainable, results: tuple[dict[str, Any], ...] = ()
    ) -> SavedCheckpoint:
        """Run the trainable's ``save_checkpoint`` and persist (or pack) what it wrote, with
        the trial's ``results`` since its previous checkpoint in the manifest."""
        state = trainable.state()
        relative = self._relative(state.iteration)
        if self.shared and self.ctx.experiment.is_local:
            staged = self.store.stage_local(relative)
            try:
                as_dict = trainable.save(staged)
                if as_dict is not None:
                    as_dict.to_directory(staged)
                require(self.ctx.experiment, self.ctx.marker)
                committed = self.store.commit_staged(relative, staged, state.iteration, results)
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)
                raise
            return self._saved(committed, state)
        tmp = tempfile.mkdtemp(prefix="tune_ckpt_save_")
        try:
            as_dict = trainable.save(tmp)
            if as_dict is not None:
                as_dict.to_directory(tmp)
            if self.shared:
                require(self.ctx.experiment, self.ctx.marker)
                return self._saved(
                    self.store.commit_local_dir(relative, tmp, state.iteration), state
                )
            packed = PackedCheckpoint.from_local_dir(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return SavedCheckpoint(state.iteration, state, relative, packed=packed)

    def save_checkpoint(
        self,
        checkpoint: Checkpoint,
        state: TrainableState,
        results: tuple[dict[str, Any], ...] = (),
    ) -> SavedCheckpoint:
        """Persist (or pack) a Checkpoint a function trainable reported."""
        relative = self._relative(state.iteration)
        if self.shared:
            require(self.ctx.experiment, self.ctx.marker)
        fs = checkpoint.filesystem
        local_dir = checkpoint.path if fs is not None and fs.type_name == "local" else None
        if local_dir is not None:
            if self.shared:
                committed = self.store.commit_local_dir(
                    relative, local_dir, state.iteration, results=results
                )
                return self._saved(committed, state)
            packed = PackedCheckpoint.from_local_dir(local_dir, checkpoint.get_metadata())
        else:
            packed = checkpoint.pack()
        if self.shared:
            committed = self.store.commit_packed(relative, packed, state.iteration, results)
            return self._saved(committed, state)
        return SavedCheckpoint(state.iteration, state, relative, packed=packed, results=results)

    def _saved(self, committed: Committed, state: TrainableState) -> SavedCheckpoint:
        return SavedCheckpoint(state.iteration, state, committed.path, committed.manifest_digest)

    def open(
        self, candidates: list[RestoreCandidate], packed: PackedCheckpoint | None
    ) -> tuple[Checkpoint, RestoreCandidate] | None:
        """The checkpoint to restore: ``packed`` when the driver sent one (it verified it),
        else the newest candidate that verifies on storage. None if none does."""
        if packed is not None:
            return Checkpoint.from_packed(packed), candidates[0]
        by_path = {c.path: c for c in candidates}
        committed = self.store.newest_verified(
            [c.path for c in candidates], {c.path: c.manifest_digest for c in candidates}
        )
        if committed is None:
            return None
        location = self.ctx.experiment.child(committed.path)
        return Checkpoint(location.root, location.fs), by_path[committed.path]


def load_into(trainable: Trainable, checkpoint: Checkpoint, state: TrainableState) -> None:
    """Restore ``trainable`` from ``checkpoint`` as the class or function API expects."""
    if isinstance(trainable, FunctionTrainable):
        trainable.restore_checkpoint(_for_function(checkpoint), state)
        return
    if checkpoint.is_dict:
        trainable.restore(checkpoint.to_dict(), state)
        return
    with checkpoint.as_directory() as directory:
        trainable.restore(directory, state)


def _for_function(checkpoint: Checkpoint) -> Checkpoint:
    # A dict checkpoint reaches the function as a dict checkpoint, however it travelled.
    return Checkpoint.from_dict(checkpoint.to_dict()) if checkpoint.is_dict else checkpoint
