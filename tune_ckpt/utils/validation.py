"""``validate_save_restore``: catch broken save/restore before a sweep runs."""

from __future__ import annotations

import pickle
import shutil
import tempfile
from typing import Any

import ray

from tune_ckpt import result as keys
from tune_ckpt.actor import StepOutcome, TrialActor
from tune_ckpt.checkpoint import FILES_KEY, Checkpoint
from tune_ckpt.config import CheckpointConfig, TransferMode
from tune_ckpt.errors import TuneCkptError
from tune_ckpt.persistence import SavedCheckpoint, TrialContext
from tune_ckpt.shared_objects import put_objects
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trainable import Trainable, as_trainable_class


class SaveRestoreError(TuneCkptError, AssertionError):
    """A trainable whose save/restore does not bring back its state."""


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    skip = set(keys.VOLATILE) | {keys.ITERATIONS_SINCE_RESTORE, keys.TRIAL_ID}
    return {k: v for k, v in result.items() if k not in skip}


class _ValidationActor(TrialActor):
    """A TrialActor that can checkpoint an iteration it was just restored at, so the state
    it restored can be compared with the checkpoint it came from."""

    def save_restored_state(self) -> SavedCheckpoint | None:
        self._last_saved = None
        return self.save()


def _state(saved: SavedCheckpoint, store: CheckpointStore) -> dict[str, Any]:
    """What a checkpoint holds, as a dict: the dict of a dict checkpoint, else its files
    (``{FILES_KEY: {path: bytes}}``). Read through storage: an unreadable checkpoint raises
    a StorageError, never a verdict on the trainable."""
    packed = saved.packed if saved.packed is not None else store.read_packed(saved.path)
    return Checkpoint.from_packed(packed).to_dict()


def _state_difference(original: dict[str, Any], restored: dict[str, Any]) -> list[str]:
    """The keys (or files) in which two checkpoints differ; empty when they are equal."""
    if set(original) == {FILES_KEY} and set(restored) == {FILES_KEY}:
        original, restored = original[FILES_KEY], restored[FILES_KEY]
    differ = []
    for key in sorted(set(original) | set(restored), key=repr):
        a, b = original.get(key, _MISSING), restored.get(key, _MISSING)
        if not _same(a, b):
            differ.append(repr(key))
    return differ


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    """Equal values; for values whose == is not a bool (numpy arrays, tensors), the same
    pickle. A false "differs" only sends the check on to the results."""
    try:
        return bool(a == b)
    except Exception:  # an elementwise or ambiguous comparison
        try:
            return pickle.dumps(a) == pickle.dumps(b)
        except Exception:  # not picklable: cannot tell, treat as different
            return False


def validate_save_restore(
    trainable_cls: type[Trainable],
    config: dict[str, Any] | None = None,
    num_gpus: float = 0,
    use_object_store: bool = False,
    compare_results: bool = True,
) -> bool:
    """Check that a trainable's checkpoint brings back its state.

    Trains one actor for three iterations, saves, and restores a second actor from that
    checkpoint, which must then continue at iterations 4 and 5. Whether the state came back
    is judged on the state itself: the restored actor checkpoints again before it trains,
    and that checkpoint must equal the one it was restored from (byte for byte for files,
    equal values for a dict). Only where they differ (a trainable that stamps its checkpoints,
    a function trainable that has not reported yet) are the results of iterations 4 and 5
    compared with the original's (timing and host fields aside); the check fails when both
    differ. Pass ``compare_results=False`` for trainables that are not deterministic: a
    difference in state is then not held against them. With ``use_object_store`` the
    checkpoint travels between the actors through Ray's object store as an in-memory object,
    not as a path.

    Returns True; raises SaveRestoreError saying what differed, or the StorageError of a
    checkpoint that could not be read.
    """
    cls = as_trainable_class(trainable_cls)
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int | float) or not num_gpus >= 0:
        raise ValueError(f"num_gpus={num_gpus!r} is invalid: a number >= 0")
    if not ray.is_initialized():
        ray.init()
    # Both actors live at once; asking for more GPUs than the cluster has would leave the
    # second pending forever instead of failing.
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    if 2 * num_gpus > gpus:
        raise ValueError(
            f"num_gpus={num_gpus!r} is more than the cluster can give: the check runs two "
            f"actors at once, {2 * num_gpus:g} GPUs in all, and the cluster has {gpus:g}"
        )
    tmp = tempfile.mkdtemp(prefix="tune_ckpt_validate_")
    actor_cls: Any = ray.remote(_ValidationActor).options(num_cpus=0, num_gpus=num_gpus)
    transfer: TransferMode = "object_store" if use_object_store else "shared"
    actors = []
    try:
        location = StorageLocation.resolve(tmp)
        store = CheckpointStore(location)

        def context(trial_id: str) -> TrialContext:
            return TrialContext(trial_id, trial_id, location, transfer, "-", CheckpointConfig())

        shared = put_objects(cls) or None  # with_parameters' objects, put once
        first = actor_cls.remote(cls, dict(config or {}), context("original"), shared)
        second = actor_cls.remote(cls, dict(config or {}), context("restored"), shared)
        actors = [first, second]
        for _ in range(3):
            ray.get(first.train.remote())
        saved = ray.get(first.save.remote())
        if saved is None:
            raise SaveRestoreError(f"{cls.__name__} produced no checkpoint after 3 iterations")
        if use_object_store:
            assert saved.packed is not None
            checkpoint = Checkpoint.from_packed(saved.packed)
            ray.get(second.restore_checkpoint.remote(ray.put(checkpoint), saved.iteration))
        else:
            path = location.local_os_path(saved.path)
            assert path is not None  # validation storage is a local temporary folder
            ray.get(
                second.restore_checkpoint.remote(Checkpoint.from_directory(path), saved.iteration)
            )
        resaved = ray.get(second.save_restored_state.remote())
        differ = (
            _state_difference(_state(saved, store), _state(resaved, store))
            if resaved is not None
            else None  # a function trainable gives a checkpoint only when it reports
        )
        restored: list[StepOutcome] = [ray.get(second.train.remote()) for _ in range(2)]
        iterations = [o.result.get(keys.TRAINING_ITERATION) for o in restored]
        if iterations != [4, 5]:
            raise SaveRestoreError(
                f"{cls.__name__} restored from a checkpoint at iteration 3 continued at "
                f"iterations {iterations}, expected [4, 5]"
            )
        if differ == [] or not compare_results:
            return True
        original = [ray.get(first.train.remote()) for _ in range(2)]
        for want, got in zip(original, restored, strict=True):
            a, b = _comparable(want.result), _comparable(got.result)
            if a != b:
                diff = {
                    k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
                }
                state = (
                    f"a checkpoint saved right after the restore differs from the one restored "
                    f"in {', '.join(differ)}, and it "
                    if differ
                    else "it "
                )
                raise SaveRestoreError(
                    f"{cls.__name__} restored from a checkpoint at iteration 3 does not bring "
                    f"back its state: {state}reports different metrics at iteration "
                    f"{a.get(keys.TRAINING_ITERATION)} than the original (original, restored): "
                    f"{diff}. Check load_checkpoint; pass compare_results=False if the "
                    "trainable is not deterministic"
                )
        return True
    finally:
        for actor in actors:
            ray.kill(actor)
        shutil.rmtree(tmp, ignore_errors=True)
