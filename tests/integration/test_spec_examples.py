"""The spec's examples (trial-checkpoint.rst), written as a user would with tune_ckpt."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.air import session
from tune_ckpt.air.checkpoint import Checkpoint
from tune_ckpt.utils import validate_save_restore

from ._support import checkpoint_dirs, checkpoint_names, iterations, run_config


def train_func(config: dict[str, Any]) -> None:
    """The spec's function API example: resume from get_checkpoint(), report a dict checkpoint."""
    epochs = config.get("epochs", 2)
    start = 0
    loaded_checkpoint = session.get_checkpoint()
    if loaded_checkpoint:
        last_step = loaded_checkpoint.to_dict()["step"]
        start = last_step + 1
    for step in range(start, epochs):
        metrics = {"metric": step * config.get("scale", 1)}
        checkpoint = Checkpoint.from_dict({"step": step})
        session.report(metrics, checkpoint=checkpoint)


class MyTrainableClass(tune.Trainable):
    """The spec's class API example, with a JSON "model" in place of torch."""

    def setup(self, config: dict[str, Any]) -> None:
        self.model = {"weights": [0.0] * config["input_size"]}

    def step(self) -> dict[str, Any]:
        self.model["weights"] = [w + 1.0 for w in self.model["weights"]]
        return {"mean_accuracy": self.model["weights"][0] / 10}

    def save_checkpoint(self, tmp_checkpoint_dir: str) -> str:
        checkpoint_path = os.path.join(tmp_checkpoint_dir, "model.json")
        with open(checkpoint_path, "w") as f:
            json.dump(self.model, f)
        return tmp_checkpoint_dir

    def load_checkpoint(self, tmp_checkpoint_dir: str) -> None:
        checkpoint_path = os.path.join(tmp_checkpoint_dir, "model.json")
        with open(checkpoint_path) as f:
            self.model = json.load(f)


class PreemptibleTrainable(MyTrainableClass):
    """The spec's manual checkpointing example: checkpoint when preemption is detected."""

    def step(self) -> dict[str, Any]:
        result = super().step()
        if self.iteration + 1 in self.config["preempted_at"]:  # detect_instance_preemption()
            result.update(should_checkpoint=True)
        return result


def test_function_api_example_saves_every_reported_checkpoint(tmp_path: Path) -> None:
    """The function example saves one checkpoint per reported step, named by iteration."""
    tuner = tune.Tuner(
        train_func,
        param_space={"epochs": 3, "scale": tune.grid_search([1, 2])},
        run_config=run_config(tmp_path),
    )
    results = tuner.fit()
    assert len(results) == 2
    assert results.num_errors == 0
    assert sorted(r.config["scale"] for r in results) == [1, 2]
    for result in results:
        assert checkpoint_dirs(result.path) == checkpoint_names(1, 2, 3)
        assert result.checkpoint is not None
        assert result.checkpoint.to_dict() == {"step": 2}
        assert result.metrics["metric"] == 2 * result.config["scale"]
        assert result.metrics["training_iteration"] == 3


def test_class_api_example_checkpoints_with_frequency(tmp_path: Path) -> None:
    """The class example with stop and checkpoint_frequency=2 leaves checkpoint_000002 on disk."""
    tuner = tune.Tuner(
        MyTrainableClass,
        param_space={"input_size": 64},
        run_config=run_config(
            tmp_path,
            stop={"training_iteration": 2},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=2),
        ),
    )
    [result] = list(tuner.fit())
    assert result.error is None
    assert checkpoint_dirs(result.path) == checkpoint_names(2)
    with open(os.path.join(result.path, "checkpoint_000002", "model.json")) as f:
        assert json.load(f)["weights"] == [2.0] * 64
    assert result.checkpoint is not None
    with result.checkpoint.as_directory() as directory:
        assert os.path.exists(os.path.join(directory, "model.json"))


def test_manual_checkpointing_example(tmp_path: Path) -> None:
    """should_checkpoint=True in a step result checkpoints exactly those iterations."""
    results = tune.Tuner(
        PreemptibleTrainable,
        param_space={"input_size": 4, "preempted_at": [2, 5]},
        run_config=run_config(tmp_path, stop={"training_iteration": 6}),
    ).fit()
    assert checkpoint_dirs(results[0].path) == checkpoint_names(2, 5)


def test_periodic_checkpointing_example_with_max_failures(tmp_path: Path) -> None:
    """checkpoint_frequency=10 with max_failures=5 checkpoints every 10th iteration."""
    tuner = tune.Tuner(
        MyTrainableClass,
        param_space={"input_size": 2},
        run_config=run_config(
            tmp_path,
            stop={"training_iteration": 25},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=10),
            failure_config=air.FailureConfig(max_failures=5),
        ),
    )
    results = tuner.fit()
    assert checkpoint_dirs(results[0].path) == checkpoint_names(10, 20)
    assert iterations(results[0].path) == list(range(1, 26))


def test_checkpoint_at_termination_example(tmp_path: Path) -> None:
    """checkpoint_at_end=True adds a checkpoint at the last iteration besides the periodic ones."""
    tuner = tune.Tuner(
        MyTrainableClass,
        param_space={"input_size": 2},
        run_config=run_config(
            tmp_path,
            stop={"training_iteration": 25},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=10, checkpoint_at_end=True),
            failure_config=air.FailureConfig(max_failures=5),
        ),
    )
    results = tuner.fit()
    assert checkpoint_dirs(results[0].path) == checkpoint_names(10, 20, 25)
    assert results[0].checkpoint is not None
    assert results[0].checkpoint.path.endswith("checkpoint_000025")


def test_validate_save_restore_example() -> None:
    """Both calls of the spec's validate_save_restore example return."""
    assert validate_save_restore(MyTrainableClass, config={"input_size": 3})
    assert validate_save_restore(MyTrainableClass, config={"input_size": 3}, use_object_store=True)
