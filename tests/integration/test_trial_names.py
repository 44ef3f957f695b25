"""``TuneConfig(trial_name_creator=..., trial_dirname_creator=...)``: the names reach the
trial context and the folders, and survive a restore (the journal does not hold the
functions)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tune_ckpt as tune

from ._support import result_lines, run_config
from .test_trial_context import context_fn


def test_creators_name_the_trials_and_their_folders_across_a_restore(tmp_path: Path) -> None:
    tune_config = tune.TuneConfig(
        trial_name_creator=lambda t: f"{t.trainable_name}_{t.trial_id}_{t.experiment_tag}",
        trial_dirname_creator=lambda t: f"run_x{t.config['x']}",
    )
    tuner = tune.Tuner(
        context_fn,
        param_space={"fail_marker": str(tmp_path / "failed"), "x": tune.grid_search([1, 2])},
        tune_config=tune_config,
        run_config=run_config(tmp_path),
    )
    first = tuner.fit()
    assert sum(r.error is not None for r in first) == 1  # the first to reach step 1 failed
    experiment = tmp_path / "exp"
    assert sorted(n for n in os.listdir(experiment) if n.startswith("run_")) == [
        "run_x1",
        "run_x2",
    ]
    header = json.loads((experiment / "experiment_journal.jsonl").read_text().splitlines()[0])
    assert header["tune_config"]["trial_name_creator"] is None
    assert header["tune_config"]["trial_dirname_creator"] is None

    restored = tune.Tuner.restore(str(experiment), context_fn, resume_errored=True)
    results = restored.fit()
    assert all(r.error is None for r in results)
    for result in results:
        x = result.config["x"]
        assert result.path == str(experiment / f"run_x{x}")
        rows = result_lines(result.path)
        assert [r["training_iteration"] for r in rows] == [1, 2, 3]
        for row in rows:
            assert row["name"] == row["air_name"]
            assert row["name"].startswith("context_fn_") and row["name"].endswith(f"_x={x}")
            assert row["name"].split("_")[2:4] == row["trial_id"].split("_")
            assert row["dir"] == result.path


def test_a_bad_folder_name_fails_before_anything_is_written(tmp_path: Path) -> None:
    tuner = tune.Tuner(
        context_fn,
        param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: "../escape"),
        run_config=run_config(tmp_path),
    )
    with pytest.raises(ValueError, match=r"returned '../escape' for trial \w+_00000"):
        tuner.fit()
    assert not (tmp_path / "exp").exists()
