"""Dict and directory checkpoints of both APIs, and restoring a trial after a failure."""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.air import session
from tune_ckpt.air.checkpoint import Checkpoint

from ._support import checkpoint_dirs, checkpoint_names, fail_once, iterations, result_lines
from ._support import run_config as _run_config


class Flaky(tune.Trainable):
    """Counts; fails once at config["fail_at"]; checkpoints as a dict or a directory."""

    def setup(self, config: dict[str, Any]) -> None:
        self.count = 0
        self.restored_from = 0
        self.loaded_type = ""
        self.attempt = 2 if os.path.exists(config["marker"]) else 1

    def step(self) -> dict[str, Any]:
        self.count += 1
        if self.count == self.config.get("fail_at"):
            fail_once(self.config["marker"])
        return {
            "count": self.count,
            "restored_from": self.restored_from,
            "loaded_type": self.loaded_type,
            "attempt": self.attempt,
        }

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any] | str:
        if self.config["kind"] == "dict":
            return {"count": self.count}
        with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
            json.dump({"count": self.count}, f)
        return checkpoint_dir

    def load_checkpoint(self, checkpoint: dict[str, Any] | str) -> None:
        self.loaded_type = type(checkpoint).__name__
        if isinstance(checkpoint, dict):
            self.count = checkpoint["count"]
        else:
            with open(os.path.join(checkpoint, "state.json")) as f:
                self.count = json.load(f)["count"]
        self.restored_from = self.count


def flaky_fn(config: dict[str, Any]) -> None:
    """Resumes from get_checkpoint(); fails once at config["fail_at"]; dict or dir checkpoints."""
    start, restored_from, seen = 0, 0, "none"
    checkpoint = session.get_checkpoint()
    if checkpoint is not None:
        seen = "dict" if checkpoint.is_dict else "dir"
        if checkpoint.is_dict:
            start = checkpoint.to_dict()["count"]
        else:
            with (
                checkpoint.as_directory() as directory,
                open(os.path.join(directory, "state.json")) as f,
            ):
                start = json.load(f)["count"]
        restored_from = start

    for count in range(start + 1, config["steps"] + 1):
        if count == config.get("fail_at"):
            fail_once(config["marker"])

        def make(count: int = count) -> Checkpoint:
            if config["kind"] == "dict":
                return Checkpoint.from_dict({"count": count})
            directory = tempfile.mkdtemp(prefix="flaky_fn_", dir=os.path.dirname(config["marker"]))
            with open(os.path.join(directory, "state.json"), "w") as f:
                json.dump({"count": count}, f)
            return Checkpoint.from_directory(directory)

        session.report({"count": count, "restored_from": restored_from, "seen": seen}, make)


def run_config(tmp_path: Path, max_failures: int = 1, **kwargs: Any) -> air.RunConfig:
    return _run_config(
        tmp_path,
        checkpoint_config=air.CheckpointConfig(checkpoint_frequency=2),
        failure_config=air.FailureConfig(max_failures=max_failures),
        **kwargs,
    )


def flaky_config(tmp_path: Path, kind: str, fail_at: int | None) -> dict[str, Any]:
    return {"kind": kind, "fail_at": fail_at, "marker": str(tmp_path / "failed_once")}


@pytest.mark.parametrize("kind", ["dict", "dir"])
def test_class_checkpoint_kinds_roundtrip(tmp_path: Path, kind: str) -> None:
    """A class's dict or directory checkpoint is stored and read back through Result."""
    results = tune.Tuner(
        Flaky,
        param_space=flaky_config(tmp_path, kind, None),
        run_config=run_config(tmp_path, stop={"training_iteration": 4}),
    ).fit()
    result = results[0]
    folder = os.path.join(result.path, "checkpoint_000004")
    assert result.checkpoint is not None
    if kind == "dict":
        assert os.path.exists(os.path.join(folder, "dict_checkpoint.pkl"))
        assert result.checkpoint.to_dict() == {"count": 4}
    else:
        with open(os.path.join(folder, "state.json")) as f:
            assert json.load(f) == {"count": 4}
        with result.checkpoint.as_directory() as directory:
            assert os.path.exists(os.path.join(directory, "state.json"))


@pytest.mark.parametrize("transfer", ["auto", "object_store"])
@pytest.mark.parametrize("kind", ["dict", "dir"])
def test_class_restores_from_latest_checkpoint_after_failure(
    tmp_path: Path, kind: str, transfer: str
) -> None:
    """A class trial failing at iteration 5 resumes from checkpoint_000004 with one history."""
    results = tune.Tuner(
        Flaky,
        param_space=flaky_config(tmp_path, kind, fail_at=5),
        run_config=run_config(
            tmp_path, stop={"training_iteration": 7}, checkpoint_transfer=transfer
        ),
    ).fit()
    result = results[0]
    assert result.error is None
    assert (tmp_path / "failed_once").exists()
    assert result.metrics["restored_from"] == 4
    assert result.metrics["loaded_type"] == ("dict" if kind == "dict" else "str")
    assert result.metrics["count"] == 7
    assert result.metrics["num_failures"] == 1
    assert result.metrics["iterations_since_restore"] == 3
    assert iterations(result.path) == [1, 2, 3, 4, 5, 6, 7]
    assert [r["restored_from"] for r in result_lines(result.path)] == [0, 0, 0, 0, 4, 4, 4]
    assert checkpoint_dirs(result.path) == checkpoint_names(2, 4, 6)


@pytest.mark.parametrize("transfer", ["auto", "object_store"])
@pytest.mark.parametrize("kind", ["dict", "dir"])
def test_function_restores_with_get_checkpoint_after_failure(
    tmp_path: Path, kind: str, transfer: str
) -> None:
    """A function failing at iteration 5 restarts and get_checkpoint() returns checkpoint 4."""
    config = {**flaky_config(tmp_path, kind, fail_at=5), "steps": 7}
    results = tune.Tuner(
        flaky_fn, param_space=config, run_config=run_config(tmp_path, checkpoint_transfer=transfer)
    ).fit()
    result = results[0]
    assert result.error is None
    assert (tmp_path / "failed_once").exists()
    assert result.metrics["restored_from"] == 4
    assert result.metrics["seen"] == kind
    assert result.metrics["count"] == 7
    assert result.metrics["training_iteration"] == 7
    assert result.metrics["num_failures"] == 1
    assert iterations(result.path) == [1, 2, 3, 4, 5, 6, 7]
    assert [r["count"] for r in result_lines(result.path)] == [1, 2, 3, 4, 5, 6, 7]
    assert checkpoint_dirs(result.path) == checkpoint_names(2, 4, 6)
    assert result.checkpoint is not None
    if kind == "dict":
        assert result.checkpoint.to_dict() == {"count": 6}
    else:
        with (
            result.checkpoint.as_directory() as directory,
            open(os.path.join(directory, "state.json")) as f,
        ):
            assert json.load(f) == {"count": 6}


def test_failure_without_checkpoint_restarts_from_scratch(tmp_path: Path) -> None:
    """A trial failing before any checkpoint restarts at iteration 1; its history starts over."""
    results = tune.Tuner(
        Flaky,
        param_space=flaky_config(tmp_path, "dict", fail_at=3),
        run_config=_run_config(
            tmp_path,
            stop={"training_iteration": 4},
            failure_config=air.FailureConfig(max_failures=1),
        ),
    ).fit()
    result = results[0]
    assert result.error is None
    assert result.metrics["restored_from"] == 0
    assert result.metrics["num_failures"] == 1
    assert result.metrics["iterations_since_restore"] == 4
    assert iterations(result.path) == [1, 2, 3, 4]
    # Every recorded result is from the second attempt, not a mix of both runs.
    assert [r["attempt"] for r in result_lines(result.path)] == [2, 2, 2, 2]


def test_failure_beyond_budget_errors(tmp_path: Path) -> None:
    """With max_failures=0 the first failure ends the trial in error, keeping its checkpoints."""
    results = tune.Tuner(
        Flaky,
        param_space=flaky_config(tmp_path, "dict", fail_at=3),
        run_config=run_config(tmp_path, max_failures=0, stop={"training_iteration": 5}),
    ).fit()
    result = results[0]
    assert result.error is not None
    assert "injected failure" in str(result.error)
    assert iterations(result.path) == [1, 2]
    assert result.checkpoint is not None
    assert result.checkpoint.to_dict() == {"count": 2}


class ReusableFlaky(Flaky):
    """Flaky with reset_config; the "quick" role finishes at once, the other one fails at
    config["fail_at"] only after the quick trial's actor has gone back to the idle pool."""

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self.setup(new_config)
        return True

    def step(self) -> dict[str, Any]:
        if self.config["role"] == "quick":
            return {"role": "quick", "done": True}
        if self.count + 1 == self.config["fail_at"]:
            wait_for_result_line(self.config["exp_dir"], '"role": "quick"')
        return super().step()


def wait_for_result_line(exp_dir: str, needle: str, timeout: float = 60.0) -> None:
    """Block until some trial's result.json under ``exp_dir`` contains ``needle``.

    The driver writes a trial's results when it finishes the trial, just before it parks
    the trial's actor for reuse, so seeing them means the actor is (about to be) idle.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in glob.glob(os.path.join(exp_dir, "*", "result.json")):
            with open(path) as f:
                if needle in f.read():
                    return
        time.sleep(0.02)
    raise TimeoutError(f"no result.json under {exp_dir} contains {needle}")


def test_reuse_actors_does_not_skip_restore(tmp_path: Path) -> None:
    """With reuse_actors a failed trial restores its checkpoint, not a reset idle actor."""
    config = {
        **flaky_config(tmp_path, "dict", fail_at=3),
        "role": tune.grid_search(["flaky", "quick"]),
        "exp_dir": str(tmp_path / "exp"),
    }
    results = tune.Tuner(
        ReusableFlaky,
        param_space=config,
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=run_config(tmp_path, stop={"training_iteration": 5}),
    ).fit()
    assert results.num_errors == 0, results.errors
    flaky = results[0]
    assert flaky.config["role"] == "flaky"
    assert (tmp_path / "failed_once").exists()
    assert flaky.metrics["restored_from"] == 2
    assert flaky.metrics["count"] == 5
    assert iterations(flaky.path) == [1, 2, 3, 4, 5]
    assert [r["attempt"] for r in result_lines(flaky.path)] == [1, 1, 2, 2, 2]
