"""``tune_ckpt.utils.mock_trainable.MyTrainableClass``, as Ray Tune's examples use it."""

from __future__ import annotations

import math
from pathlib import Path

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.utils import validate_save_restore
from tune_ckpt.utils.mock_trainable import MyTrainableClass

from ._support import iterations, run_config


def test_my_trainable_class_saves_restores_and_recovers(tmp_path: Path) -> None:
    """Its checkpoint brings its timestep back; with ``mock_error`` it fails once after
    its first step, is restored from its checkpoint and ends on the curve's value."""
    assert validate_save_restore(MyTrainableClass, {"width": 2, "height": 3})
    result = tune.Tuner(
        MyTrainableClass,
        param_space={"width": 2, "height": 3, "mock_error": True},
        run_config=run_config(
            tmp_path,
            stop={"training_iteration": 4},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=1),
            failure_config=air.FailureConfig(max_failures=1),
        ),
    ).fit()[0]
    assert result.error is None
    assert result.metrics["num_failures"] == 1
    assert iterations(result.path) == [1, 2, 3, 4]
    assert math.isclose(result.metrics["episode_reward_mean"], 3 * math.tanh(4 / 2))
