"""Worker-side checkpoint persistence: the two transfer paths of DESIGN.md section 3.

* ``shared``: the worker sees the experiment's storage and commits its checkpoints itself
  (on local disk the trainable writes straight into the staged folder, so nothing is copied).
* ``object_store``: the worker packs the checkpoint into one buffer and returns it; Ray's
  object store carries it to the driver, which commits it. Restores come back the same way.

``auto`` decides once per worker process and experiment: the worker shares the driver's
storage when it sees the marker file the driver wrote into the experiment folder and can
create and delete a probe file beside it. A worker that cannot, or that is refused a commit
later (credentials set in the driver after ``ray.init()``, a read-only role on the worker
nodes), sends its checkpoints through the object store, and the driver warns once per node
(``ObjectStoreFallback``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Any

from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig, TransferMode
from tune_ckpt.errors import StorageError, StoragePermissionError
from tune_ckpt.storage import paths
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.lease import require
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import METADATA_NAME
from tune_ckpt.storage.owner import require_owner
from tune_ckpt.storage.packing import PackedCheckpoint
from tune_ckpt.storage.reading import Committed
from tune_ckpt.trainable import FunctionTrainable, Trainable, TrainableState

logger = logging.getLogger(__name__)

PROBE_PREFIX = ".tune_ckpt_probe_"
"""Files a worker creates and deletes at the experiment root to learn it may write there."""


@dataclass(frozen=True)
class TrialContext:
    """What a trial's actor needs to know about where and how to checkpoint. Picklable."""

    trial_id: str
    trial_dir: str
    experiment: StorageLocation
    transfer: TransferMode
    marker: str
    checkpoint_config: CheckpointConfig
    stop_thresholds: dict[str, float | bool] | None = None
    """``RunConfig.stop`` when it is a dict, so the worker can tell when to stop; None when
    stopping is decided by a callable in the driver (one step per call then)."""
    batch_seconds: float = 0.3
    """How long one call may keep stepping before it reports back. A round trip to the driver
    costs about 3 ms on a small machine; 0.3 s keeps that near 1% of short steps' time while
    the driver still hears of results (and can act on a drain) within a third of a second."""
    trial_name: str = ""
    """The trial's name (``TuneConfig(trial_name_creator=...)``); empty: its folder's."""
    resources: dict[str, float] | None = None
    """What the trial holds (Ray's names: ``CPU``, ``GPU``, custom), for the trial context."""
    owner: str = ""
    """This actor's token in the trial folder's owner file (``storage/owner``), checked
    before each commit; empty for the trial's first actor."""


@dataclass(frozen=True)
class ObjectStoreFallback:
    """Why a worker that would have written the storage itself sends its checkpoints to the
    driver through the object store. Travels with each such checkpoint; the driver logs
    ``message`` once per node."""

    node_id: str
    node_address: str
    cause: str

    def message(self, experiment_uri: str) -> str:
        return (
            f"node {self.node_address} ({self.node_id}) cannot write the experiment's "
            f"storage {experiment_uri}: {self.cause}. Its workers send their checkpoints "
            "to the driver through Ray's object store instead, which costs a copy of each "
            "checkpoint through the driver. Credentials set in the driver after ray.init() "
            "do not reach the workers: to let them write directly, give the nodes access "
            "(credentials or a role in the environment Ray starts with on each node), or "
            'pass the credentials from the driver: ray.init(runtime_env={"env_vars": '
            '{"AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...}}).'
        )


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
    fallback: ObjectStoreFallback | None = field(default=None, compare=False)
    """Set on a packed checkpoint from a worker that could not write the storage itself."""
    seconds: float = field(default=0.0, compare=False)
    """How long the worker took to save (and commit, or pack) it: what an emergency save
    before a node's drain deadline is expected to cost."""

    @property
    def committed(self) -> bool:
        return self.packed is None


@dataclass(frozen=True)
class RestoreCandidate:
    """A committed checkpoint a worker may restore from, with the state it resumes."""

    path: str
    manifest_digest: str
    state: TrainableState


@dataclass(frozen=True)
class RestoreOutcome:
    """What a restore used (None: no candidate verified) and why newer ones were skipped,
    so the driver can log it where the user sees it."""

    used: RestoreCandidate | None
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransferChoice:
    """How this worker persists an experiment's checkpoints: ``shared`` (itself) or through
    the object store; ``fallback`` says why when it was meant to write and cannot."""

    shared: bool
    fallback: ObjectStoreFallback | None = None


# Per worker process and experiment (its marker is unique per fit()) and filesystem (equal
# when its options and explicit credentials are): the probe costs a few storage requests,
# and a reused worker process must not lose a switch to the object store.
_choices: dict[tuple[str, str], list[tuple[Any, TransferChoice]]] = {}


def _remembered(ctx: TrialContext) -> TransferChoice | None:
    for fs, choice in _choices.get((ctx.experiment.uri(), ctx.marker), []):
        if fs.equals(ctx.experiment.fs):
            return choice
    return None


def _remember(ctx: TrialContext, choice: TransferChoice) -> None:
    key = (ctx.experiment.uri(), ctx.marker)
    others = [(fs, c) for fs, c in _choices.get(key, []) if not fs.equals(ctx.experiment.fs)]
    _choices[key] = [*others, (ctx.experiment.fs, choice)]


def choose_transfer(ctx: TrialContext) -> TransferChoice:
    """The transfer path of this worker for ``ctx``'s experiment (see module docs).
    ``shared`` is taken at its word until a commit is refused."""
    if ctx.transfer == "object_store":
        return TransferChoice(False)
    choice = _remembered(ctx)
    if choice is None:
        choice = TransferChoice(True) if ctx.transfer == "shared" else _probe(ctx)
        _remember(ctx, choice)
    return choice


def _probe(ctx: TrialContext) -> TransferChoice:
    """Shared when the driver's marker is visible and a probe file can be created and
    deleted beside it. Local disk without the marker is a node that does not share the
    driver's disk: the object store by design, nothing to warn about."""
    experiment = ctx.experiment
    node_id, address = _this_node()
    step = "reading the driver's marker"
    try:
        if not experiment.is_file(ctx.marker):
            if experiment.is_local:
                return TransferChoice(False)
            cause = f"the driver's marker {ctx.marker} is not visible from this node"
            return TransferChoice(False, ObjectStoreFallback(node_id, address, cause))
        step = "creating and deleting a probe file"
        probe = f"{PROBE_PREFIX}{node_id[:16] or socket.gethostname()}_{uuid.uuid4().hex}"
        experiment.write_bytes(probe, b"")
        experiment.delete_file(probe, missing_ok=False)
    except StorageError as exc:
        return TransferChoice(False, ObjectStoreFallback(node_id, address, _cause(step, exc)))
    return TransferChoice(True)


def _cause(step: str, error: StorageError) -> str:
    return f"{step} failed with {type(error).__name__} ({error.cause.rstrip('.')})"


def _this_node() -> tuple[str, str]:
    """This worker's Ray node id and IP address (the host name outside Ray)."""
    import ray

    if not ray.is_initialized():
        return "", socket.gethostname()
    return str(ray.get_runtime_context().get_node_id()), ray.util.get_node_ip_address()


def _pack_dir(directory: str) -> PackedCheckpoint:
    """A local checkpoint folder packed with its user metadata, if it has any."""
    metadata = None
    meta_path = os.path.join(directory, METADATA_NAME)
    if os.path.exists(meta_path):
        with open(meta_path, "rb") as f:
            metadata = json.loads(f.read())
    return PackedCheckpoint.from_local_dir(directory, metadata)


class CheckpointWriter:
    """Saves and loads one trial's checkpoints on the worker.

    A permission error while committing is not the trial's failure: the writer switches to
    the object store for good (in this worker process, for this experiment) and returns the
    same checkpoint packed for the driver to commit. A checkpoint the refused commit left
    half written has no manifest, so it is not listed, and the driver's commit replaces it.
    """

    def __init__(self, ctx: TrialContext) -> None:
        self.ctx = ctx
        self.store = CheckpointStore(ctx.experiment, guard=self._may_commit)
        choice = choose_transfer(ctx)
        self.shared = choice.shared
        self.fallback = choice.fallback

    def _relative(self, iteration: int) -> str:
        return paths.join(self.ctx.trial_dir, paths.checkpoint_dirname(iteration))

    def _may_commit(self) -> None:
        """Right before a commit publishes anything: its driver still holds the lease
        (``storage/lease``) and this actor still owns the trial (``storage/owner``)."""
        require(self.ctx.experiment, self.ctx.marker)
        require_owner(self.ctx.experiment, self.ctx.trial_dir, self.ctx.owner)

    def _switch_to_object_store(self, error: StoragePermissionError) -> None:
        node_id, address = _this_node()
        cause = _cause(f"a commit to {error.path}", error)
        self.fallback = ObjectStoreFallback(node_id, address, cause)
        self.shared = False
        _remember(self.ctx, TransferChoice(False, self.fallback))
        logger.info("trial %s: %s", self.ctx.trial_id, self.fallback.cause)

    def save_trainable(
        self, trainable: Trainable, results: tuple[dict[str, Any], ...] = ()
    ) -> SavedCheckpoint:
        """Run the trainable's ``save_checkpoint`` and persist (or pack) what it wrote, with
        the trial's ``results`` since its previous checkpoint in the manifest."""
        state = trainable.state()
        relative = self._relative(state.iteration)
        if self.shared and self.ctx.experiment.is_local:
            try:
                staged = self.store.stage_local(relative)
            except StoragePermissionError as exc:
                self._switch_to_object_store(exc)
            else:
                return self._save_staged(trainable, staged, relative, state, results)
        tmp = tempfile.mkdtemp(prefix="tune_ckpt_save_")
        try:
            _save_into(trainable, tmp)
            if self.shared:
                try:
                    committed = self.store.commit_local_dir(
                        relative, tmp, state.iteration, results=results
                    )
                    return self._saved(committed, state)
                except StoragePermissionError as exc:
                    self._switch_to_object_store(exc)
            packed = _pack_dir(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self._packed(relative, packed, state, results)

    def _save_staged(
        self,
        trainable: Trainable,
        staged: str,
        relative: str,
        state: TrainableState,
        results: tuple[dict[str, Any], ...],
    ) -> SavedCheckpoint:
        """Local storage: the trainable writes straight into the staged folder, which is
        committed, or packed if the commit is refused; it never outlives the call."""
        try:
            _save_into(trainable, staged)
            try:
                committed = self.store.commit_staged(relative, staged, state.iteration, results)
            except StoragePermissionError as exc:
                self._switch_to_object_store(exc)
                return self._packed(relative, _pack_dir(staged), state, results)
        finally:
            shutil.rmtree(staged, ignore_errors=True)  # gone already once renamed into place
        return self._saved(committed, state)

    def save_checkpoint(
        self,
        checkpoint: Checkpoint,
        state: TrainableState,
        results: tuple[dict[str, Any], ...] = (),
    ) -> SavedCheckpoint:
        """Persist (or pack) a Checkpoint a function trainable reported."""
        relative = self._relative(state.iteration)
        fs = checkpoint.filesystem
        local_dir = checkpoint.path if fs is not None and fs.type_name == "local" else None
        if local_dir is not None:
            if self.shared:
                try:
                    committed = self.store.commit_local_dir(
                        relative, local_dir, state.iteration, results=results
                    )
                    return self._saved(committed, state)
                except StoragePermissionError as exc:
                    self._switch_to_object_store(exc)
            packed = PackedCheckpoint.from_local_dir(local_dir, checkpoint.get_metadata())
        else:
            packed = checkpoint.pack()
        if self.shared:
            try:
                committed = self.store.commit_packed(relative, packed, state.iteration, results)
                return self._saved(committed, state)
            except StoragePermissionError as exc:
                self._switch_to_object_store(exc)
        return self._packed(relative, packed, state, results)

    def _saved(self, committed: Committed, state: TrainableState) -> SavedCheckpoint:
        return SavedCheckpoint(state.iteration, state, committed.path, committed.manifest_digest)

    def _packed(
        self,
        relative: str,
        packed: PackedCheckpoint,
        state: TrainableState,
        results: tuple[dict[str, Any], ...],
    ) -> SavedCheckpoint:
        return SavedCheckpoint(
            state.iteration, state, relative, packed=packed, results=results,
            fallback=self.fallback,
        )  # fmt: skip

    def open(
        self, candidates: list[RestoreCandidate], packed: PackedCheckpoint | None
    ) -> tuple[Checkpoint | None, RestoreOutcome]:
        """The checkpoint to restore: ``packed`` when the driver sent one (it verified it),
        else the newest candidate that verifies on storage (None if none does). A candidate
        that cannot be read now raises StorageError: it is not skipped as corrupt."""
        if packed is not None:
            return Checkpoint.from_packed(packed), RestoreOutcome(candidates[0])
        by_path = {c.path: c for c in candidates}
        skipped: list[str] = []
        committed = self.store.newest_verified(
            [c.path for c in candidates],
            {c.path: c.manifest_digest for c in candidates},
            skipped=skipped,
        )
        if committed is None:
            return None, RestoreOutcome(None, tuple(skipped))
        location = self.ctx.experiment.child(committed.path)
        outcome = RestoreOutcome(by_path[committed.path], tuple(skipped))
        return Checkpoint.at(location), outcome


def _save_into(trainable: Trainable, directory: str) -> None:
    """Run ``save_checkpoint`` into ``directory``; a returned dict is written there too."""
    as_dict = trainable.save(directory)
    if as_dict is not None:
        as_dict.to_directory(directory)


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
