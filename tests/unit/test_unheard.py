"""Checkpoints a dead worker committed that the driver never heard of: adopted when they
continue the driver's last result, left alone otherwise. Real local storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tune_ckpt.driver.unheard import adopt_unheard
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.result_files import read_results
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial


def _result(iteration: int) -> dict[str, Any]:
    return {
        "training_iteration": iteration,
        "time_total_s": iteration * 0.1,
        "time_this_iter_s": 0.1,
        "x": iteration,
    }


def _setup(tmp_path: Path) -> tuple[StorageLocation, CheckpointStore, Trial]:
    experiment = StorageLocation.resolve(str(tmp_path / "exp"))
    store = CheckpointStore(experiment)
    source = tmp_path / "state"
    source.mkdir()
    (source / "state").write_text("x")
    trial = Trial("t", {}, "t")
    recorded = store.commit_local_dir("t/checkpoint_000010", str(source), 10, results=[])
    trial.checkpoints = [
        CheckpointRecord(recorded.path, 10, _result(10), recorded.manifest_digest, 0.0)
    ]
    return experiment, store, trial


def _commit(store: CheckpointStore, tmp_path: Path, iteration: int, first: int) -> None:
    source = tmp_path / "state"
    store.commit_local_dir(
        f"t/checkpoint_{iteration:06d}",
        str(source),
        iteration,
        results=[_result(i) for i in range(first, iteration + 1)],
    )


def test_a_checkpoint_continuing_the_last_result_is_adopted(tmp_path: Path) -> None:
    experiment, store, trial = _setup(tmp_path)
    trial.last_result = _result(18)  # the driver heard of 18; the worker reached 20
    _commit(store, tmp_path, 20, first=11)
    record = adopt_unheard(trial, store, experiment)
    assert record is not None and record.iteration == 20
    assert trial.checkpoints[-1] is record
    assert trial.last_result["training_iteration"] == 20
    history = read_results(experiment, "t")
    assert [r["training_iteration"] for r in history] == [19, 20]  # only what was missing


def test_a_checkpoint_right_after_the_recorded_one_is_adopted(tmp_path: Path) -> None:
    """The driver's last result was the recorded checkpoint's (iteration 10, which closed its
    results); the unheard one's results begin at 11, the next step of the same line."""
    experiment, store, trial = _setup(tmp_path)
    trial.last_result = _result(10)
    _commit(store, tmp_path, 15, first=11)
    record = adopt_unheard(trial, store, experiment)
    assert record is not None and record.iteration == 15
    history = read_results(experiment, "t")
    assert [r["training_iteration"] for r in history] == [11, 12, 13, 14, 15]


def test_a_next_step_of_another_line_is_left_alone(tmp_path: Path) -> None:
    """Its first result is iteration 11, but its time does not follow the driver's 10."""
    experiment, store, trial = _setup(tmp_path)
    trial.last_result = {**_result(10), "time_total_s": 7.5}
    _commit(store, tmp_path, 15, first=11)
    assert adopt_unheard(trial, store, experiment) is None
    assert [r.iteration for r in trial.checkpoints] == [10]


def test_a_checkpoint_of_another_line_is_left_alone(tmp_path: Path) -> None:
    """Same iterations, other times: an earlier line of the trial (before a restart from an
    older checkpoint, or a PBT exploit) left it."""
    experiment, store, trial = _setup(tmp_path)
    trial.last_result = {**_result(18), "time_total_s": 99.0}
    _commit(store, tmp_path, 20, first=11)
    assert adopt_unheard(trial, store, experiment) is None
    assert [r.iteration for r in trial.checkpoints] == [10]


def test_nothing_newer_means_nothing_adopted(tmp_path: Path) -> None:
    experiment, store, trial = _setup(tmp_path)
    trial.last_result = _result(13)
    assert adopt_unheard(trial, store, experiment) is None
    assert [r.iteration for r in trial.checkpoints] == [10]
