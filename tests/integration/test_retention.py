"""Retention end to end: num_to_keep, score attribute and order, the latest always kept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.air import session
from tune_ckpt.air.checkpoint import Checkpoint

from ._support import checkpoint_dirs, checkpoint_names, run_config


class Peaked(tune.Trainable):
    """score = -(iteration - peak)**2: best at config["peak"]; a directory checkpoint."""

    def setup(self, config: dict[str, Any]) -> None:
        self.i = 0

    def step(self) -> dict[str, Any]:
        self.i += 1
        return {"score": -((self.i - self.config["peak"]) ** 2), "nested": {"loss": self.i}}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "i.txt"), "w") as f:
            f.write(str(self.i))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "i.txt")) as f:
            self.i = int(f.read())


def peaked_fn(config: dict[str, Any]) -> None:
    """The function-API twin of Peaked, reporting an eager dict checkpoint every step."""
    for i in range(1, config["steps"] + 1):
        session.report(
            {"score": -((i - config["peak"]) ** 2)}, checkpoint=Checkpoint.from_dict({"i": i})
        )


def run_peaked(tmp_path: Path, steps: int = 5, peak: int = 2, **ckpt: Any) -> tune.Result:
    results = tune.Tuner(
        Peaked,
        param_space={"peak": peak},
        run_config=run_config(
            tmp_path,
            stop={"training_iteration": steps},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=1, **ckpt),
        ),
    ).fit()
    assert results.num_errors == 0, results.errors
    return results[0]


def kept_iterations(result: tune.Result) -> list[int]:
    """Iterations of Result.best_checkpoints, in the order given (best first)."""
    return [int(os.path.basename(c.path)[len("checkpoint_") :]) for c, _ in result.best_checkpoints]


def test_keep_all_by_default(tmp_path: Path) -> None:
    """Without num_to_keep every checkpoint stays; best_checkpoints lists them newest first."""
    result = run_peaked(tmp_path, steps=4)
    assert checkpoint_dirs(result.path) == checkpoint_names(1, 2, 3, 4)
    assert kept_iterations(result) == [4, 3, 2, 1]


def test_num_to_keep_without_score_keeps_most_recent(tmp_path: Path) -> None:
    """num_to_keep=2 with no score attribute keeps the two newest; older folders are gone."""
    result = run_peaked(tmp_path, steps=5, num_to_keep=2)
    assert checkpoint_dirs(result.path) == checkpoint_names(4, 5)
    assert not os.path.exists(os.path.join(result.path, "checkpoint_000001"))
    assert kept_iterations(result) == [5, 4]
    assert result.checkpoint is not None
    assert result.checkpoint.path.endswith("checkpoint_000005")


def test_num_to_keep_with_score_max_keeps_best_and_latest(tmp_path: Path) -> None:
    """num_to_keep=2 by max score keeps the two best (newer wins ties) plus the latest."""
    result = run_peaked(
        tmp_path, steps=5, peak=2, num_to_keep=2, checkpoint_score_attribute="score"
    )
    # scores by iteration: 1:-1, 2:0, 3:-1, 4:-4, 5:-9
    assert checkpoint_dirs(result.path) == checkpoint_names(2, 3, 5)
    assert kept_iterations(result) == [2, 3, 5]
    assert [m["score"] for _, m in result.best_checkpoints] == [0, -1, -9]
    assert result.checkpoint is not None
    assert result.checkpoint.path.endswith("checkpoint_000005")


def test_num_to_keep_one_with_score_min_nested(tmp_path: Path) -> None:
    """num_to_keep=1 ranking by a nested metric with mode min keeps iteration 1 and the latest."""
    result = run_peaked(
        tmp_path,
        steps=4,
        num_to_keep=1,
        checkpoint_score_attribute="nested/loss",
        checkpoint_score_order="min",
    )
    assert checkpoint_dirs(result.path) == checkpoint_names(1, 4)
    assert kept_iterations(result) == [1, 4]


def test_retention_deletes_folders_and_keeps_contents_of_kept(tmp_path: Path) -> None:
    """Dropped checkpoint folders are removed from disk; kept ones hold their own state."""
    result = run_peaked(
        tmp_path, steps=6, peak=3, num_to_keep=1, checkpoint_score_attribute="score"
    )
    assert checkpoint_dirs(result.path) == checkpoint_names(3, 6)
    leftovers = [n for n in os.listdir(result.path) if n.startswith((".tmp", ".trash"))]
    assert leftovers == []
    for checkpoint, metrics in result.best_checkpoints:
        with checkpoint.as_directory() as directory, open(os.path.join(directory, "i.txt")) as f:
            assert int(f.read()) == metrics["training_iteration"]


def test_function_retention_with_score(tmp_path: Path) -> None:
    """Function checkpoints obey num_to_keep and the score attribute too."""
    results = tune.Tuner(
        peaked_fn,
        param_space={"steps": 5, "peak": 3},
        run_config=run_config(
            tmp_path,
            checkpoint_config=air.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute="score"
            ),
        ),
    ).fit()
    result = results[0]
    assert checkpoint_dirs(result.path) == checkpoint_names(3, 5)
    assert [c.to_dict() for c, _ in result.best_checkpoints] == [{"i": 3}, {"i": 5}]
