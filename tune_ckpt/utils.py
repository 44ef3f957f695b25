"""``validate_save_restore``: catch broken save/restore before a sweep runs."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import ray

from tune_ckpt import result as keys
from tune_ckpt.actor import StepOutcome, TrialActor
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig, TransferMode
from tune_ckpt.errors import TuneCkptError
from tune_ckpt.persistence import TrialContext
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trainable import Trainable, as_trainable_class


class SaveRestoreError(TuneCkptError, AssertionError):
    """A trainable whose save/restore does not bring back its state."""


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    skip = set(keys.VOLATILE) | {keys.ITERATIONS_SINCE_RESTORE, keys.TRIAL_ID}
    return {k: v for k, v in result.items() if k not in skip}


def validate_save_restore(
    trainable_cls: type[Trainable],
    config: dict[str, Any] | None = None,
    num_gpus: float = 0,
    use_object_store: bool = False,
    compare_results: bool = True,
) -> bool:
    """Check that a trainable's checkpoint brings back its state.

    Trains one actor for three iterations, saves, restores a second actor from that
    checkpoint and trains both to iteration 5. The restored actor must continue at
    iterations 4 and 5 and, with ``compare_results`` (turn it off for trainables that are
    not deterministic), report the same metrics as the original (timing and host fields
    aside). With ``use_object_store`` the checkpoint travels between the actors through
    Ray's object store as an in-memory object, not as a path.

    Returns True; raises SaveRestoreError saying what differed.
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
    actor_cls: Any = ray.remote(TrialActor).options(num_cpus=0, num_gpus=num_gpus)
    transfer: TransferMode = "object_store" if use_object_store else "shared"
    actors = []
    try:
        location = StorageLocation.resolve(tmp)

        def context(trial_id: str) -> TrialContext:
            return TrialContext(trial_id, trial_id, location, transfer, "-", CheckpointConfig())

        first = actor_cls.remote(cls, dict(config or {}), context("original"))
        second = actor_cls.remote(cls, dict(config or {}), context("restored"))
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
        restored: list[StepOutcome] = [ray.get(second.train.remote()) for _ in range(2)]
        iterations = [o.result.get(keys.TRAINING_ITERATION) for o in restored]
        if iterations != [4, 5]:
            raise SaveRestoreError(
                f"{cls.__name__} restored from a checkpoint at iteration 3 continued at "
                f"iterations {iterations}, expected [4, 5]"
            )
        if compare_results:
            original = [ray.get(first.train.remote()) for _ in range(2)]
            for want, got in zip(original, restored, strict=True):
                a, b = _comparable(want.result), _comparable(got.result)
                if a != b:
                    diff = {
                        k: (a.get(k), b.get(k))
                        for k in sorted(set(a) | set(b))
                        if a.get(k) != b.get(k)
                    }
                    raise SaveRestoreError(
                        f"{cls.__name__} restored from a checkpoint at iteration 3 reports "
                        f"different metrics at iteration {a.get(keys.TRAINING_ITERATION)} than "
                        f"the original (original, restored): {diff}. load_checkpoint does not "
                        "bring back all state; pass compare_results=False if the trainable is "
                        "not deterministic"
                    )
        return True
    finally:
        for actor in actors:
            ray.kill(actor)
        shutil.rmtree(tmp, ignore_errors=True)
