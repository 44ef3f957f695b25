"""``tune_ckpt.run`` with Ray Tune's argument names, and its ExperimentAnalysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt.air import session
from tune_ckpt.checkpoint import Checkpoint


def loss_curve(config: dict[str, Any]) -> None:
    """loss falls to its minimum at step 2 then rises; fails when config["fail"]."""
    for step in range(4):
        if config.get("fail") and step == 1:
            raise RuntimeError("failing on purpose")
        loss = config["x"] + (step - 2) ** 2
        session.report({"loss": loss, "step": step}, checkpoint=Checkpoint.from_dict({"s": step}))


def test_run_with_legacy_argument_names(tmp_path: Path) -> None:
    """checkpoint_score_attr="min-loss" keeps the lowest-loss checkpoints; the analysis
    names the best trial, config, result, checkpoint and dataframe by metric/mode."""
    analysis = tune.run(
        loss_curve,
        config={"x": tune.grid_search([3, 1, 2])},
        metric="loss",
        mode="min",
        stop={"training_iteration": 4},
        storage_path=str(tmp_path),
        name="legacy",
        keep_checkpoints_num=2,
        checkpoint_score_attr="min-loss",
        resources_per_trial={"cpu": 1},
        verbose=False,
    )
    assert len(analysis.trials) == 3
    assert analysis.best_config == {"x": 1}
    assert analysis.best_result["loss"] == 1 + 1  # the last step's loss
    assert analysis.best_trial.config == {"x": 1}
    assert analysis.get_best_trial("loss", "min", scope="all").config == {"x": 1}
    # Retention by lowest loss kept steps 2 (loss x) and 1 or 3 (x + 1), plus the latest.
    kept = sorted(m["step"] for _, m in analysis.best_trial.best_checkpoints)
    assert 2 in kept and 3 in kept and 0 not in kept
    assert analysis.best_checkpoint.to_dict() == {"s": 2}
    worst = max(analysis.trials, key=lambda t: t.config["x"])
    assert analysis.get_best_checkpoint(worst, "loss", "max").to_dict()["s"] == 3
    assert list(analysis.best_dataframe["step"]) == [0, 1, 2, 3]
    assert sorted(analysis.dataframe()["config/x"]) == [1, 2, 3]
    assert sorted(analysis.dataframe("loss", "min")["loss"]) == [1, 2, 3]


def test_run_raises_tune_error_on_failed_trials(tmp_path: Path) -> None:
    with pytest.raises(tune.TuneError, match="1 of 2 trials did not complete"):
        tune.run(
            loss_curve,
            config={"x": 1, "fail": tune.grid_search([False, True])},
            storage_path=str(tmp_path),
            name="fails",
            verbose=0,
        )
    analysis = tune.run(
        loss_curve,
        config={"x": 1, "fail": tune.grid_search([False, True])},
        storage_path=str(tmp_path),
        name="fails_quietly",
        verbose=0,
        raise_on_failed_trial=False,
    )
    assert [t.error is not None for t in analysis.trials] == [False, True]


def test_run_refuses_unknown_arguments_and_bad_schedulers(tmp_path: Path) -> None:
    """Checked before anything runs."""
    with pytest.raises(TypeError, match=r"\['local_dir', 'sync_config'\]"):
        tune.run(loss_curve, local_dir=str(tmp_path), sync_config=None)
    with pytest.raises(ValueError, match=r"scheduler=.*TrialScheduler or None"):
        tune.run(loss_curve, scheduler=object())
    with pytest.raises(ValueError, match=r"search_alg=.*tune_ckpt.search.Searcher or None"):
        tune.run(loss_curve, search_alg=object())
    with pytest.raises(ValueError, match="resume='SOMETIMES' is invalid"):
        tune.run(loss_curve, resume="SOMETIMES")
