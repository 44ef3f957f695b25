"""Bad input fails early with a message that says what is wrong."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt.air import session
from tune_ckpt.errors import StorageError, TrainableError

from ._support import run_config


class Plain:
    """Not a tune_ckpt.Trainable."""

    def step(self) -> dict[str, Any]:
        return {}


class Counting(tune.Trainable):
    def setup(self, config: dict[str, Any]) -> None:
        self.count = 0
        if "started" in config:
            Path(config["started"]).touch()

    def step(self) -> dict[str, Any]:
        self.count += 1
        return {"count": self.count}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"count": self.count}

    def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.count = checkpoint["count"]


class ReturnsList(tune.Trainable):
    def step(self) -> Any:
        return [1, 2, 3]


class SavesElsewhere(Counting):
    """save_checkpoint writes its own folder and returns that instead of the one given."""

    def save_checkpoint(self, checkpoint_dir: str) -> str:  # type: ignore[override]
        other = os.path.join(os.path.dirname(checkpoint_dir), "somewhere_else")
        os.makedirs(other, exist_ok=True)
        return other


def reports_a_list(config: dict[str, Any]) -> None:
    session.report([1, 2])  # type: ignore[arg-type]


def bad_checkpoint_callable(config: dict[str, Any]) -> None:
    session.report({"a": 1}, checkpoint=lambda: {"not": "a checkpoint"})


@pytest.mark.parametrize("trainable", [42, "train_fn", Plain], ids=["int", "str", "class"])
def test_not_a_trainable(trainable: Any) -> None:
    """Something neither a function nor a Trainable subclass is refused by Tuner()."""
    with pytest.raises(TrainableError, match=r"tune_ckpt\.Trainable"):
        tune.Tuner(trainable)


def test_unpicklable_closure_names_the_variable(tmp_path: Path) -> None:
    """A function capturing a threading.Lock is refused, naming the captured variable."""
    lock = threading.Lock()

    def train_fn(config: dict[str, Any]) -> None:
        with lock:
            session.report({"a": 1})

    with pytest.raises(TrainableError) as info:
        tune.Tuner(train_fn, run_config=run_config(tmp_path))
    message = str(info.value)
    assert "'train_fn'" in message
    assert "captured variable 'lock'" in message
    assert "lock" in message.lower() and "pickle" in message
    assert not (tmp_path / "exp").exists()


def test_unpicklable_class_attribute_names_the_attribute() -> None:
    """A Trainable class holding a lock as a class attribute is refused, naming it."""

    class Locked(Counting):
        guard = threading.Lock()

    with pytest.raises(TrainableError, match="attribute 'guard'"):
        tune.Tuner(Locked)


@pytest.mark.parametrize(
    ("space", "where"),
    [
        ({"opt": {"guard": threading.Lock()}}, "param_space['opt']['guard']"),
        ({"layers": [1, (2, threading.Lock())]}, "param_space['layers'][1][1]"),
        ({"act": tune.choice(["relu", threading.Lock()])}, "param_space['act'] category"),
    ],
)
def test_unpicklable_config_names_the_key(
    tmp_path: Path, space: dict[str, Any], where: str
) -> None:
    """A config that cannot be persisted exactly (params.pkl) is refused by Tuner(), naming
    the key path to the value, before anything is written."""
    with pytest.raises(TypeError) as info:
        tune.Tuner(Counting, param_space=space, run_config=run_config(tmp_path))
    message = str(info.value)
    assert message.startswith(where), message
    assert "lock" in message and "cannot be persisted" in message
    assert not (tmp_path / "exp").exists()


def test_unknown_stop_key_raises_from_fit(tmp_path: Path) -> None:
    """A stop criterion on a metric the trial never reports makes fit() raise, naming it."""
    tuner = tune.Tuner(Counting, run_config=run_config(tmp_path, stop={"acuracy": 0.9}))
    with pytest.raises(ValueError, match="'acuracy'") as info:
        tuner.fit()
    assert "count" in str(info.value)  # lists the metrics that do exist


def test_step_returning_non_dict_errors_the_trial(tmp_path: Path) -> None:
    """step() returning a list ends the trial in error saying it must return a dict."""
    results = tune.Tuner(
        ReturnsList, run_config=run_config(tmp_path, stop={"training_iteration": 2})
    ).fit()
    assert results.num_errors == 1
    message = str(results[0].error)
    assert "ReturnsList.step() returned list" in message
    assert "must return a dict" in message


def test_report_non_dict_errors_the_trial(tmp_path: Path) -> None:
    """report() with non-dict metrics ends the trial in error saying metrics must be a dict."""
    results = tune.Tuner(reports_a_list, run_config=run_config(tmp_path)).fit()
    assert "metrics must be a dict" in str(results[0].error)


def test_checkpoint_callable_returning_non_checkpoint(tmp_path: Path) -> None:
    """A checkpoint callable returning something else ends the trial with a clear error."""
    results = tune.Tuner(
        bad_checkpoint_callable,
        run_config=run_config(
            tmp_path, checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1)
        ),
    ).fit()
    message = str(results[0].error)
    assert "checkpoint callable passed to report() returned" in message
    assert "must return a tune_ckpt.Checkpoint" in message


def test_save_checkpoint_returning_other_path_errors_the_trial(tmp_path: Path) -> None:
    """save_checkpoint returning a path other than the one given fails with a clear message."""
    results = tune.Tuner(
        SavesElsewhere,
        run_config=run_config(
            tmp_path,
            stop={"training_iteration": 3},
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
        ),
    ).fit()
    assert results.num_errors == 1
    message = str(results[0].error)
    assert "SavesElsewhere.save_checkpoint(" in message
    assert "somewhere_else" in message
    assert "must return None, the directory it was given, or a dict" in message
    assert results[0].checkpoint is None
    trial_files = os.listdir(results[0].path)
    assert not [n for n in trial_files if n.startswith((".tmp", "checkpoint_"))]


@pytest.fixture(scope="module")
def plain_grid(tmp_path_factory: pytest.TempPathFactory) -> tune.ResultGrid:
    """Two finished trials and no metric/mode in TuneConfig."""
    return tune.Tuner(
        Counting,
        param_space={"x": tune.grid_search([1, 2])},
        run_config=run_config(tmp_path_factory.mktemp("plain"), stop={"training_iteration": 1}),
    ).fit()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({}, "needs a metric and a mode"),
        ({"metric": "count"}, "give both metric and mode"),
        ({"mode": "max"}, "give both metric and mode"),
        ({"metric": "count", "mode": "best"}, "mode='best' is invalid"),
        ({"metric": "missing", "mode": "max"}, "no trial reported a numeric 'missing'"),
        ({"metric": "count", "mode": "max", "scope": "best"}, "scope='best' is invalid: one of"),
    ],
)
def test_get_best_result_bad_metric_or_mode(
    plain_grid: tune.ResultGrid, kwargs: dict[str, Any], pattern: str
) -> None:
    """get_best_result without a usable metric/mode pair raises ValueError saying why."""
    with pytest.raises(ValueError, match=pattern):
        plain_grid.get_best_result(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"filter_metric": "count", "filter_mode": "best"}, "filter_mode='best' is invalid"),
        ({"filter_mode": "max"}, "needs filter_metric"),
    ],
)
def test_get_dataframe_bad_filter(
    plain_grid: tune.ResultGrid, kwargs: dict[str, Any], pattern: str
) -> None:
    """get_dataframe with an unknown filter_mode, or one without filter_metric: ValueError."""
    with pytest.raises(ValueError, match=pattern):
        plain_grid.get_dataframe(**kwargs)


def test_unwritable_storage_path_fails_before_any_trial(tmp_path: Path) -> None:
    """A storage_path under a regular file raises a STORAGE_ERRORS member before trials run."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    started = tmp_path / "started"
    tuner = tune.Tuner(
        Counting,
        param_space={"started": str(started)},
        run_config=tune.RunConfig(
            storage_path=str(blocker / "results"),
            name="exp",
            verbose=0,
            stop={"training_iteration": 1},
        ),
    )
    with pytest.raises(tune.STORAGE_ERRORS) as info:
        tuner.fit()
    assert isinstance(info.value, StorageError)
    assert "storage_path cannot be written" in str(info.value)
    assert str(blocker) in str(info.value)
    assert not started.exists()
    assert blocker.read_text() == "not a folder"
