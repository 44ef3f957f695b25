"""Result files per trial, ResultGrid and Result, and trial errors surfacing in results."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.air import session
from tune_ckpt.errors import TrialError

from ._support import checkpoint_dirs, result_lines, run_config


def quadratic(config: dict[str, Any]) -> None:
    """loss = (x - 3)**2 + step; fails on purpose when config["x"] is config.get("bad")."""
    for step in range(3):
        if config["x"] == config.get("bad") and step == 1:
            explode_on_purpose(config["x"])
        session.report({"loss": (config["x"] - 3) ** 2 + step, "acc": config["x"] * 10})


def explode_on_purpose(x: int) -> None:
    raise ValueError(f"boom for x={x}")


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tune.ResultGrid:
    """Four trials over x in 1..4, x=1 failing at its second step; metric loss/min default."""
    tuner = tune.Tuner(
        quadratic,
        param_space={"x": tune.grid_search([1, 2, 3, 4]), "bad": 1},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=run_config(tmp_path_factory.mktemp("grid")),
    )
    return tuner.fit()


def test_result_grid_len_iter_and_index(grid: tune.ResultGrid) -> None:
    """The grid has one Result per trial in trial order, via len, iteration and indexing."""
    assert len(grid) == 4
    assert [r.config["x"] for r in grid] == [1, 2, 3, 4]
    assert [grid[i].config["x"] for i in range(4)] == [1, 2, 3, 4]
    assert grid[-1].config == {"x": 4, "bad": 1}


def test_result_files_exist_per_trial(grid: tune.ResultGrid) -> None:
    """Each trial folder holds params.json, result.json (a JSON per line) and progress.csv."""
    for result in grid:
        with open(os.path.join(result.path, "params.json")) as f:
            assert json.load(f) == result.config
        lines = result_lines(result.path)
        expected = 1 if result.config["x"] == 1 else 3
        assert [r["training_iteration"] for r in lines] == list(range(1, expected + 1))
        assert lines[-1]["loss"] == result.metrics["loss"]
        with open(os.path.join(result.path, "progress.csv")) as f:
            rows = list(csv.DictReader(f))
        assert [int(r["training_iteration"]) for r in rows] == list(range(1, expected + 1))
        assert float(rows[0]["loss"]) == (result.config["x"] - 3) ** 2


def test_trial_paths_are_distinct_folders_of_the_experiment(grid: tune.ResultGrid) -> None:
    """Result.path is a distinct folder per trial inside the experiment folder."""
    assert len({r.path for r in grid}) == 4
    for result in grid:
        assert os.path.dirname(result.path) == grid.experiment_path
        assert os.path.isdir(result.path)


def test_failed_trial_error_carries_worker_traceback(grid: tune.ResultGrid) -> None:
    """The failing trial's Result.error holds the message and the raising function's name."""
    assert grid.num_errors == 1
    assert len(grid.errors) == 1
    error = grid[0].error
    assert isinstance(error, TrialError)
    assert grid.errors[0] is error
    text = str(error)
    assert "boom for x=1" in text
    assert "ValueError" in text
    assert "explode_on_purpose" in text
    assert "quadratic" in text
    assert grid[0].metrics["training_iteration"] == 1


def test_other_trials_finish_when_one_fails(grid: tune.ResultGrid) -> None:
    """Trials other than the failing one finish all their iterations without error."""
    for index in (1, 2, 3):
        assert grid[index].error is None
        assert grid[index].metrics["training_iteration"] == 3
        assert grid[index].metrics["done"] is True
    assert grid.num_terminated == 3


def test_get_best_result_uses_tune_config_defaults(grid: tune.ResultGrid) -> None:
    """get_best_result() with no arguments ranks by TuneConfig's metric and mode."""
    best = grid.get_best_result()
    assert best.config["x"] == 3
    assert best.metrics["loss"] == 2


def test_get_best_result_explicit_metric_and_mode(grid: tune.ResultGrid) -> None:
    """Explicit metric/mode override the defaults."""
    assert grid.get_best_result(metric="acc", mode="max").config["x"] == 4
    assert grid.get_best_result(metric="loss", mode="min").config["x"] == 3
    assert grid.get_best_result(metric="training_iteration", mode="min").config["x"] == 1


def test_get_dataframe(grid: tune.ResultGrid) -> None:
    """get_dataframe has one row per trial with metrics, config/ columns and paths."""
    import pandas as pd  # here, not at the top: Ray workers import this module too

    df = grid.get_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 4
    assert list(df["config/x"]) == [1, 2, 3, 4]
    assert list(df["loss"]) == [4, 3, 2, 3]
    assert list(df["path"]) == [r.path for r in grid]
    assert {"training_iteration", "trial_id", "acc"} <= set(df.columns)


def test_result_metrics_config_checkpoint_path(tmp_path: Path) -> None:
    """A class trial's Result exposes last metrics, config, checkpoint, path and no error."""

    results = tune.Tuner(
        Summing,
        param_space={"inc": tune.grid_search([1, 5])},
        run_config=run_config(
            tmp_path,
            stop={"training_iteration": 3},
            checkpoint_config=air.CheckpointConfig(checkpoint_at_end=True),
        ),
    ).fit()
    for result in results:
        inc = result.config["inc"]
        assert result.metrics["total"] == 3 * inc
        assert result.metrics["training_iteration"] == 3
        assert result.error is None
        assert result.path.startswith(str(tmp_path / "exp"))
        assert checkpoint_dirs(result.path) == ["checkpoint_000003"]
        assert result.checkpoint is not None
        assert result.checkpoint.to_dict() == {"total": 3 * inc}
        [(best, metrics)] = result.best_checkpoints
        assert best.path == result.checkpoint.path
        assert metrics["total"] == 3 * inc


class Summing(tune.Trainable):
    """Adds config["inc"] each step; a dict checkpoint."""

    def setup(self, config: dict[str, Any]) -> None:
        self.total = 0

    def step(self) -> dict[str, Any]:
        self.total += self.config["inc"]
        return {"total": self.total, "ratio": math.inf if self.config["inc"] == 5 else 1.0}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"total": self.total}

    def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.total = checkpoint["total"]


def test_get_best_result_filters_inf(tmp_path: Path) -> None:
    """get_best_result skips trials whose metric is infinite unless told not to."""
    results = tune.Tuner(
        Summing,
        param_space={"inc": tune.grid_search([1, 5])},
        run_config=run_config(tmp_path, stop={"training_iteration": 1}),
    ).fit()
    assert results.get_best_result("ratio", "max").config["inc"] == 1
    assert results.get_best_result("ratio", "max", filter_nan_and_inf=False).config["inc"] == 5


def sample_fn(config: dict[str, Any]) -> None:
    session.report({"u": config["u"], "g": config["g"]})


def test_num_samples_repeats_the_grid(tmp_path: Path) -> None:
    """num_samples=2 over a 2-value grid and a uniform domain gives 4 trials, grid order kept."""
    results = tune.Tuner(
        sample_fn,
        param_space={"g": tune.grid_search(["a", "b"]), "u": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=2),
        run_config=run_config(tmp_path),
    ).fit()
    assert len(results) == 4
    assert [r.config["g"] for r in results] == ["a", "b", "a", "b"]
    for result in results:
        assert 0.0 <= result.config["u"] <= 1.0
        assert result.metrics["u"] == result.config["u"]
        with open(os.path.join(result.path, "params.json")) as f:
            assert json.load(f) == result.config


def test_fail_fast_raise_raises_trial_error(tmp_path: Path) -> None:
    """FailureConfig(fail_fast="raise") makes fit() raise the trial's error with its traceback."""
    tuner = tune.Tuner(
        quadratic,
        param_space={"x": 5, "bad": 5},
        run_config=run_config(tmp_path, failure_config=air.FailureConfig(fail_fast="raise")),
    )
    with pytest.raises(TrialError, match="boom for x=5") as info:
        tuner.fit()
    assert "explode_on_purpose" in str(info.value)


def test_fail_fast_stops_the_sweep(tmp_path: Path) -> None:
    """fail_fast=True ends the sweep after the first error: later trials never start."""
    results = tune.Tuner(
        quadratic,
        param_space={"x": tune.grid_search([5, 1, 2]), "bad": 5},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=run_config(tmp_path, failure_config=air.FailureConfig(fail_fast=True)),
    ).fit()
    assert results.num_errors == 1
    assert "boom for x=5" in str(results[0].error)
    for result in results[1:]:
        assert result.error is None
        assert "training_iteration" not in result.metrics


# Per trial, the values of "v" it reports: each scope picks a different trial (mode max).
SEQUENCES = {
    "spike": [10, 0, 0, 0, 0, 0],  # best ever: 10
    "steady": [0, 2, 2, 2, 2, 2],  # best mean of the last 5: 2
    "front": [9, 1, 1, 1, 1, 1],  # best mean of all: 2.33
    "late": [0, 0, 0, 0, 0, 2.5],  # best last value: 2.5
    "inf": [0, math.inf, 0, 0, 0, 0],  # written to result.json as "inf"
}


def sequence_fn(config: dict[str, Any]) -> None:
    for value in SEQUENCES[config["name"]]:
        session.report({"v": value, "eval": {"neg": -value}})


@pytest.fixture(scope="module")
def sequences(tmp_path_factory: pytest.TempPathFactory) -> tune.ResultGrid:
    """One trial per SEQUENCES entry, with a nested config and a nested metric."""
    return tune.Tuner(
        sequence_fn,
        param_space={"name": tune.grid_search(list(SEQUENCES)), "opt": {"lr": 0.5}},
        run_config=run_config(tmp_path_factory.mktemp("sequences")),
    ).fit()


@pytest.mark.parametrize(
    ("scope", "mode", "expected"),
    [
        ("last", "max", "late"),
        ("all", "max", "spike"),
        ("avg", "max", "front"),
        ("last-10-avg", "max", "front"),
        ("last-5-avg", "max", "steady"),
        ("last-5-avg", "min", "spike"),
        ("last", "min", "spike"),
    ],
)
def test_get_best_result_scope(
    sequences: tune.ResultGrid, scope: str, mode: str, expected: str
) -> None:
    """scope ranks each trial by its last value, its mean, the mean of its last 5 or 10, or
    its best value ever, read from the trial's result history."""
    assert sequences.get_best_result("v", mode, scope=scope).config["name"] == expected
    # The same ranking through the nested name, mode reversed.
    flipped = "min" if mode == "max" else "max"
    assert sequences.get_best_result("eval/neg", flipped, scope=scope).config["name"] == expected


def test_get_best_result_scope_and_infinity(sequences: tune.ResultGrid) -> None:
    """An infinity in the history makes the trial's "all" value infinite: skipped by
    default, picked with filter_nan_and_inf=False."""
    assert sequences.get_best_result("v", "max", scope="all").config["name"] == "spike"
    best = sequences.get_best_result("v", "max", scope="all", filter_nan_and_inf=False)
    assert best.config["name"] == "inf"


def test_result_history_and_metrics_dataframe(sequences: tune.ResultGrid) -> None:
    """Result.history() is every reported result; metrics_dataframe flattens nested ones."""
    for result in sequences:
        values = SEQUENCES[result.config["name"]]
        assert [r["v"] for r in result.history()] == values
        df = result.metrics_dataframe
        assert list(df["v"]) == values
        assert list(df["eval/neg"]) == [-v for v in values]
        assert list(df["training_iteration"]) == list(range(1, len(values) + 1))


def test_get_dataframe_flattens_and_filters(sequences: tune.ResultGrid) -> None:
    """get_dataframe flattens metrics and config to a/b columns; with filter_metric and
    filter_mode each row is the trial's result where the metric was best (earliest of ties)."""
    last = sequences.get_dataframe()
    assert list(last["config/name"]) == list(SEQUENCES)
    assert list(last["config/opt/lr"]) == [0.5] * len(SEQUENCES)
    assert list(last["v"]) == [values[-1] for values in SEQUENCES.values()]
    assert list(last["eval/neg"]) == [-values[-1] for values in SEQUENCES.values()]
    assert list(last["logdir"]) == list(last["path"]) == [r.path for r in sequences]

    best = sequences.get_dataframe(filter_metric="v", filter_mode="max")
    assert list(best["v"]) == [max(values) for values in SEQUENCES.values()]
    first_max = [values.index(max(values)) + 1 for values in SEQUENCES.values()]
    assert list(best["training_iteration"]) == first_max
    lowest = sequences.get_dataframe(filter_metric="eval/neg", filter_mode="min")
    assert list(lowest["training_iteration"]) == first_max
    earliest_min = [values.index(min(values)) + 1 for values in SEQUENCES.values()]
    worst = sequences.get_dataframe(filter_metric="v", filter_mode="min")
    assert list(worst["training_iteration"]) == earliest_min
