"""A driver SIGKILLed mid-sweep with a searcher or a scheduler: ``Tuner.restore`` (without a
tune_config) continues the searcher's suggestions and the scheduler's rungs, so the sweep
ends as an uninterrupted one does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune

from ._search_driver import ITERATIONS, TRIALS, kill_mid_sweep, tuner
from ._trainables import accumulate_fn, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")


def _outcome(grid: Any) -> list[tuple[float, int, float]]:
    """Each trial's a, last iteration and total, sorted."""
    return sorted(
        (r.config["a"], r.metrics["training_iteration"], r.metrics["total"]) for r in grid
    )


def test_optuna_continues_its_suggestions_after_a_driver_crash(tmp_path: Path) -> None:
    """The seeded study is restored with the journal: the same trials (TPE's later ones
    depend on the earlier results) and final metrics as without the crash; a trial
    running at the kill resumes from its checkpoint, none is suggested twice."""
    uninterrupted = tuner(str(tmp_path / "clean"), "optuna").fit()
    kill_mid_sweep(tmp_path / "crash", "optuna")
    experiment = tmp_path / "crash" / "exp"
    before = json.loads((experiment / "searcher_state.json").read_text())
    assert 3 <= before["created"] < TRIALS

    restored = tune.Tuner.restore(str(experiment), accumulate_fn).fit()

    assert len(restored) == TRIALS
    assert _outcome(restored) == _outcome(uninterrupted)
    for result in restored:
        assert result.metrics["total"] == expected_total(ITERATIONS, result.config["a"])
    assert any(r.metrics["restored_from"] for r in restored)
    after = json.loads((experiment / "searcher_state.json").read_text())
    assert after["created"] == TRIALS and len(after["told_complete"]) == TRIALS


def test_asha_rungs_continue_after_a_driver_crash(tmp_path: Path) -> None:
    """ASHA's rung records come back with the experiment: the same trials are stopped at
    the same iterations, with the same final metrics, as without the crash."""
    uninterrupted = tuner(str(tmp_path / "clean"), "asha").fit()
    stopped = [r for r in uninterrupted if r.metrics["training_iteration"] < ITERATIONS]
    assert stopped, "the grid is meant to have ASHA stop some trials"
    kill_mid_sweep(tmp_path / "crash", "asha")
    experiment = tmp_path / "crash" / "exp"
    rungs = json.loads((experiment / "scheduler_state.json").read_text())

    restored = tune.Tuner.restore(str(experiment), accumulate_fn).fit()

    assert _outcome(restored) == _outcome(uninterrupted)
    final = json.loads((experiment / "scheduler_state.json").read_text())
    assert final != rungs  # the rungs went on from the saved ones
