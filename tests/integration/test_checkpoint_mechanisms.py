"""Which checkpoint folders each mechanism (manual, periodic, at end, eager) produces."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.air import session
from tune_ckpt.air.checkpoint import Checkpoint

from ._support import checkpoint_dirs, checkpoint_names, run_config


class Counter(tune.Trainable):
    """Counts; asks for a checkpoint (under config["key"]) at config["manual"] iterations."""

    def setup(self, config: dict[str, Any]) -> None:
        self.count = 0

    def step(self) -> dict[str, Any]:
        self.count += 1
        result: dict[str, Any] = {"count": self.count}
        if self.count in self.config.get("manual", ()):
            result[self.config.get("key", "should_checkpoint")] = True
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        if "calls_log" in self.config:
            with open(self.config["calls_log"], "a") as f:
                f.write(f"{self.count}\n")
        return {"count": self.count}

    def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.count = checkpoint["count"]


def counting_fn(config: dict[str, Any]) -> None:
    """Reports config["steps"] times with a checkpoint callable; logs each call of it."""
    log = config["calls_log"]
    state = {"count": 0}

    def make_checkpoint() -> Checkpoint:
        with open(log, "a") as f:
            f.write(f"{state['count']}\n")
        return Checkpoint.from_dict(dict(state))

    for _ in range(config["steps"]):
        state["count"] += 1
        metrics: dict[str, Any] = {"count": state["count"]}
        if state["count"] in config.get("manual", ()):
            metrics["should_checkpoint"] = True
        session.report(metrics, checkpoint=make_checkpoint)


def eager_fn(config: dict[str, Any]) -> None:
    """Reports a Checkpoint object (eager) on the iterations listed in config["eager"]."""
    for i in range(1, config["steps"] + 1):
        checkpoint = Checkpoint.from_dict({"i": i}) if i in config["eager"] else None
        session.report({"i": i}, checkpoint=checkpoint)


def callable_calls(log: Path) -> list[int]:
    """The counts at which a checkpoint was produced (as logged by the trainables here)."""
    if not log.exists():
        return []
    return [int(line) for line in log.read_text().split()]


def run_class(tmp_path: Path, config: dict[str, Any], stop: int, **ckpt: Any) -> str:
    results = tune.Tuner(
        Counter,
        param_space=config,
        run_config=run_config(
            tmp_path,
            stop={"training_iteration": stop},
            checkpoint_config=air.CheckpointConfig(**ckpt),
        ),
    ).fit()
    assert results.num_errors == 0, results.errors
    return results[0].path


@pytest.mark.parametrize(
    "key", ["should_checkpoint", tune.result.SHOULD_CHECKPOINT], ids=["literal", "constant"]
)
def test_class_manual_checkpoint(tmp_path: Path, key: str) -> None:
    """A step result with should_checkpoint=True checkpoints that iteration and no other."""
    path = run_class(tmp_path, {"manual": [2, 3], "key": key}, stop=5)
    assert checkpoint_dirs(path) == checkpoint_names(2, 3)


def test_class_no_mechanism_no_checkpoint(tmp_path: Path) -> None:
    """Without any mechanism a class trainable leaves no checkpoint and Result.checkpoint None."""
    results = tune.Tuner(
        Counter, run_config=run_config(tmp_path, stop={"training_iteration": 3})
    ).fit()
    assert checkpoint_dirs(results[0].path) == []
    assert results[0].checkpoint is None
    assert results[0].best_checkpoints == []


def test_class_periodic_checkpoint(tmp_path: Path) -> None:
    """checkpoint_frequency=3 over 10 iterations checkpoints 3, 6 and 9."""
    path = run_class(tmp_path, {}, stop=10, checkpoint_frequency=3)
    assert checkpoint_dirs(path) == checkpoint_names(3, 6, 9)


def test_class_checkpoint_at_end(tmp_path: Path) -> None:
    """checkpoint_at_end=True alone checkpoints the final iteration only."""
    path = run_class(tmp_path, {}, stop=4, checkpoint_at_end=True)
    assert checkpoint_dirs(path) == checkpoint_names(4)


def test_class_checkpoint_at_end_not_twice(tmp_path: Path) -> None:
    """When the last iteration was already checkpointed, at-end neither saves nor adds a folder."""
    log = tmp_path / "calls.log"
    path = run_class(
        tmp_path, {"calls_log": str(log)}, stop=6, checkpoint_frequency=3, checkpoint_at_end=True
    )
    assert checkpoint_dirs(path) == checkpoint_names(3, 6)
    assert callable_calls(log) == [3, 6]
    manifest = os.path.join(path, "checkpoint_000006", ".tune_ckpt_manifest.json")
    assert os.path.exists(manifest)


def test_class_manual_on_last_iteration_and_at_end_saves_once(tmp_path: Path) -> None:
    """should_checkpoint on the final iteration plus checkpoint_at_end saves that one once."""
    log = tmp_path / "calls.log"
    path = run_class(
        tmp_path, {"manual": [4], "calls_log": str(log)}, stop=4, checkpoint_at_end=True
    )
    assert checkpoint_dirs(path) == checkpoint_names(4)
    assert callable_calls(log) == [4]


def test_class_all_mechanisms_together(tmp_path: Path) -> None:
    """Manual, periodic and at-end checkpoints combine without duplicates."""
    path = run_class(
        tmp_path, {"manual": [1, 4]}, stop=7, checkpoint_frequency=4, checkpoint_at_end=True
    )
    assert checkpoint_dirs(path) == checkpoint_names(1, 4, 7)


def run_fn(tmp_path: Path, config: dict[str, Any], **ckpt: Any) -> str:
    config = {"calls_log": str(tmp_path / "calls.log"), **config}
    results = tune.Tuner(
        counting_fn,
        param_space=config,
        run_config=run_config(tmp_path, checkpoint_config=air.CheckpointConfig(**ckpt)),
    ).fit()
    assert results.num_errors == 0, results.errors
    return results[0].path


def test_function_callable_is_not_called_without_a_mechanism(tmp_path: Path) -> None:
    """A checkpoint callable passed to report() is never called when no checkpoint is due."""
    path = run_fn(tmp_path, {"steps": 4})
    assert checkpoint_dirs(path) == []
    assert callable_calls(tmp_path / "calls.log") == []


def test_function_callable_with_frequency(tmp_path: Path) -> None:
    """checkpoint_frequency=2 calls the callable at iterations 2 and 4 and saves those only."""
    path = run_fn(tmp_path, {"steps": 5}, checkpoint_frequency=2)
    assert checkpoint_dirs(path) == checkpoint_names(2, 4)
    assert callable_calls(tmp_path / "calls.log") == [2, 4]


def test_function_callable_with_should_checkpoint(tmp_path: Path) -> None:
    """should_checkpoint in reported metrics calls the callable for exactly that iteration."""
    path = run_fn(tmp_path, {"steps": 4, "manual": [3]})
    assert checkpoint_dirs(path) == checkpoint_names(3)
    assert callable_calls(tmp_path / "calls.log") == [3]


def test_function_callable_at_end(tmp_path: Path) -> None:
    """checkpoint_at_end=True saves the last report's state when the function returns."""
    path = run_fn(tmp_path, {"steps": 4}, checkpoint_at_end=True)
    assert checkpoint_dirs(path) == checkpoint_names(4)
    assert callable_calls(tmp_path / "calls.log") == [4]
    assert Checkpoint.from_directory(os.path.join(path, "checkpoint_000004")).to_dict() == {
        "count": 4
    }


def test_function_callable_at_end_with_stop(tmp_path: Path) -> None:
    """A stop criterion ends the function mid-loop and at-end checkpoints that iteration."""
    config = {"calls_log": str(tmp_path / "calls.log"), "steps": 100}
    results = tune.Tuner(
        counting_fn,
        param_space=config,
        run_config=run_config(
            tmp_path,
            stop={"count": 3},
            checkpoint_config=air.CheckpointConfig(checkpoint_at_end=True),
        ),
    ).fit()
    assert checkpoint_dirs(results[0].path) == checkpoint_names(3)
    assert results[0].checkpoint is not None
    assert results[0].checkpoint.to_dict() == {"count": 3}


def test_function_callable_frequency_and_at_end_not_twice(tmp_path: Path) -> None:
    """At-end after a periodic checkpoint of the final iteration neither saves nor calls again."""
    path = run_fn(tmp_path, {"steps": 4}, checkpoint_frequency=2, checkpoint_at_end=True)
    assert checkpoint_dirs(path) == checkpoint_names(2, 4)
    assert callable_calls(tmp_path / "calls.log") == [2, 4]


def test_function_eager_checkpoint_always_saved(tmp_path: Path) -> None:
    """A Checkpoint object passed to report() is saved at once, whatever the schedule."""
    results = tune.Tuner(
        eager_fn,
        param_space={"steps": 5, "eager": [1, 4]},
        run_config=run_config(tmp_path),
    ).fit()
    assert checkpoint_dirs(results[0].path) == checkpoint_names(1, 4)
    assert results[0].checkpoint is not None
    assert results[0].checkpoint.to_dict() == {"i": 4}


def test_function_eager_checkpoint_and_frequency(tmp_path: Path) -> None:
    """Eager checkpoints are saved; frequency only adds iterations that reported one."""
    results = tune.Tuner(
        eager_fn,
        param_space={"steps": 4, "eager": [1, 2, 3]},
        run_config=run_config(
            tmp_path,
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=2, checkpoint_at_end=True),
        ),
    ).fit()
    # Iteration 4 reported no checkpoint: there is nothing to save at the end.
    assert checkpoint_dirs(results[0].path) == checkpoint_names(1, 2, 3)
