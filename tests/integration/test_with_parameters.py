"""``with_parameters`` on real Ray: a 50 MiB array put once in the object store and shared
by every trial (class and function trainables), re-specified on restore, inside
``with_resources``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from ray import cloudpickle
from ray._private.internal_api import get_memory_info_reply, get_state_from_address

import tune_ckpt as tune
from tune_ckpt.checkpoint import Checkpoint

from ._support import fail_once, run_config

MIB = 2**20
ARRAY_BYTES = 50 * MIB


def _store_stats() -> Any:
    """The object store's counters (Ray's own, as ``ray memory --stats-only`` prints)."""
    state = get_state_from_address(ray.get_runtime_context().gcs_address)
    return get_memory_info_reply(state).store_stats


def _array(value: float) -> np.ndarray:
    return np.full(ARRAY_BYTES // 4, value, dtype=np.float32)


class SharedArrayTrainable(tune.Trainable):
    def setup(self, config: dict[str, Any], data: np.ndarray | None = None) -> None:
        assert data is not None
        self.data = data

    def step(self) -> dict[str, Any]:
        return _seen(self.data) | {"done": True}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {}

    def load_checkpoint(self, checkpoint: Any) -> None:
        pass


def shared_array_fn(config: dict[str, Any], data: np.ndarray) -> None:
    tune.report(_seen(data))


def _seen(data: np.ndarray) -> dict[str, Any]:
    # A read-only array is a view of the object store's shared memory, not a copy.
    return {"first": float(data[0]), "nbytes": int(data.nbytes), "view": not data.flags.writeable}


@pytest.mark.parametrize("trainable", [SharedArrayTrainable, shared_array_fn])
def test_eight_trials_share_one_copy_in_the_object_store(tmp_path: Path, trainable: Any) -> None:
    shared = tune.with_parameters(trainable, data=_array(1.5))
    # What the driver sends to each worker holds no copy of the array.
    assert len(cloudpickle.dumps(shared)) < 100_000
    before = _store_stats().cumulative_created_bytes
    results = tune.Tuner(
        tune.with_resources(shared, {"cpu": 0.5}),
        param_space={"i": tune.grid_search(list(range(8)))},
        run_config=run_config(tmp_path),
    ).fit()
    created = _store_stats().cumulative_created_bytes - before
    assert len(results) == 8 and not results.errors
    for result in results:
        assert result.metrics["first"] == 1.5 and result.metrics["nbytes"] == ARRAY_BYTES
        assert result.metrics["view"]
    # One copy went into the store for the sweep; eight would be 400 MiB.
    assert ARRAY_BYTES <= created < 2 * ARRAY_BYTES, created / MIB


def resumable_fn(config: dict[str, Any], data: np.ndarray) -> None:
    checkpoint = tune.get_checkpoint()
    start = checkpoint.to_dict()["step"] if checkpoint else 0
    for step in range(start, 3):
        if step == 1:
            fail_once(config["marker"])
        tune.report({"first": float(data[0])}, checkpoint=Checkpoint.from_dict({"step": step + 1}))


def test_restore_takes_the_re_specified_objects(tmp_path: Path) -> None:
    """The first run's trial fails after a checkpoint; restored with a trainable built
    again by with_parameters, it resumes with the new array."""
    marker = str(tmp_path / "failed")
    first = tune.Tuner(
        tune.with_parameters(resumable_fn, data=_array(1.0)),
        param_space={"marker": marker},
        run_config=run_config(tmp_path),
    ).fit()
    (result,) = first
    assert result.error is not None and result.metrics["first"] == 1.0
    experiment = str(tmp_path / "exp")
    tuner = tune.Tuner.restore(
        experiment,
        trainable=tune.with_parameters(resumable_fn, data=_array(2.0)),
        resume_errored=True,
    )
    (resumed,) = tuner.fit()
    assert resumed.error is None
    assert resumed.metrics["training_iteration"] == 3 and resumed.metrics["first"] == 2.0


def resources_fn(config: dict[str, Any], data: np.ndarray) -> None:
    tune.report({"first": float(data[0]), "cpu": tune.get_context().get_trial_resources()["CPU"]})


@pytest.mark.parametrize("outer", ["with_resources", "with_parameters"])
def test_with_resources_composes_either_way(tmp_path: Path, outer: str) -> None:
    data = np.arange(10.0) + 3
    if outer == "with_resources":
        trainable = tune.with_resources(tune.with_parameters(resources_fn, data=data), {"cpu": 0.5})
    else:
        trainable = tune.with_parameters(tune.with_resources(resources_fn, {"cpu": 0.5}), data=data)
    assert trainable.__name__ == "resources_fn"
    (result,) = tune.Tuner(trainable, run_config=run_config(tmp_path)).fit()
    assert result.error is None
    assert result.metrics["first"] == 3.0 and result.metrics["cpu"] == 0.5


def test_validate_save_restore_delivers_the_objects() -> None:
    from tune_ckpt.utils import validate_save_restore

    assert validate_save_restore(tune.with_parameters(SharedArrayTrainable, data=_array(4.0)))
