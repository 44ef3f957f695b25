"""Schedulers driving real sweeps: ASHA stopping trials, pauses that checkpoint and resume
from exactly that checkpoint, a user's own scheduler, and the scheduler's state kept with
the experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fault._trainables import Accumulator, expected_total

import tune_ckpt as tune
from tune_ckpt.schedulers import (
    ASHAScheduler,
    HyperBandScheduler,
    SchedulerDecision,
    TrialScheduler,
)
from tune_ckpt.trial import Trial


def scored(config: dict[str, Any]) -> None:
    """Reports the same score, its config's x, for 9 iterations; no checkpoints."""
    for _ in range(9):
        tune.report({"score": config["x"]})


def _run(tmp_path: Path, trainable: Any, space: dict, scheduler: Any, **tune_kw: Any) -> Any:
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(scheduler=scheduler, **tune_kw),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), name="exp", verbose=0, stop={"training_iteration": 9}
        ),
    ).fit()


def test_asha_stops_trials_worse_than_the_rung(tmp_path: Path) -> None:
    """One trial at a time, each worse than all before: the first runs to max_t, every
    later one is stopped at the first rung (grace period 1), TERMINATED, not ERROR. The
    scheduler's state is saved beside the journal."""
    asha = ASHAScheduler(metric="score", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    space = {"x": tune.grid_search([9, 8, 7, 6])}
    results = _run(tmp_path, scored, space, asha, max_concurrent_trials=1)
    iterations = [r.metrics["training_iteration"] for r in results]
    assert iterations == [9, 1, 1, 1]
    assert all(r.error is None for r in results)
    state = json.loads((tmp_path / "exp" / "scheduler_state.json").read_text())
    assert state["scheduler"] == type(asha).__name__
    fresh = ASHAScheduler(metric="score", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    fresh.restore_state(state)
    assert fresh.save_state() == state
    # Restored without a tune_config: the scheduler comes back from the experiment, with
    # its rungs, and finds nothing left to do.
    restored = tune.Tuner.restore(str(tmp_path / "exp"), scored)
    again = restored.fit()
    assert [r.metrics["training_iteration"] for r in again] == [9, 1, 1, 1]
    assert json.loads((tmp_path / "exp" / "scheduler_state.json").read_text()) == state


class PauseAtTwo(TrialScheduler):
    """A user's scheduler: pauses every trial once, at iteration 2."""

    def __init__(self) -> None:
        self.paused: set[str] = set()

    def on_trial_result(
        self, runner: Any, trial: Trial, result: dict[str, Any]
    ) -> SchedulerDecision:
        if result["training_iteration"] == 2 and trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return self.PAUSE
        return self.CONTINUE

    def save_state(self) -> dict[str, Any]:
        return {**super().save_state(), "paused": sorted(self.paused)}

    def restore_state(self, state: dict[str, Any]) -> None:
        super().restore_state(state)
        self.paused = set(state["paused"])


def test_a_pause_checkpoints_and_resumes_from_exactly_that_checkpoint(tmp_path: Path) -> None:
    """Pausing takes a checkpoint (no periodic ones are configured) and gives the resources
    back; the trial resumes from that checkpoint with its state intact."""
    space = {"a": tune.grid_search([1, 2, 3])}
    results = _run(tmp_path, Accumulator, space, PauseAtTwo())
    for result, a in zip(results, [1, 2, 3], strict=True):
        assert result.error is None
        assert result.metrics["restored_from"] == 2
        assert result.metrics["num_failures"] == 0
        assert result.metrics["total"] == expected_total(9, a)


def test_paused_trials_resume_in_the_worker_processes_already_running(tmp_path: Path) -> None:
    """Three trials on two CPUs, each paused once: a paused trial's process stays for the
    next trial of its shape, which resets it and restores its own checkpoint there, so the
    whole sweep runs in two worker processes, every resume from its pause checkpoint."""
    space = {"a": tune.grid_search([1, 2, 3])}
    results = _run(tmp_path, Accumulator, space, PauseAtTwo())
    pids = set()
    for result, a in zip(results, [1, 2, 3], strict=True):
        assert result.error is None
        assert result.metrics["restored_from"] == 2
        assert result.metrics["total"] == expected_total(9, a)
        pids.update(row["pid"] for row in result.metrics_dataframe.to_dict("records"))
    assert len(pids) <= 2, pids


def test_a_trainable_that_cannot_checkpoint_cannot_be_paused(tmp_path: Path) -> None:
    """A function that reports no checkpoint, asked to pause: its trial ends in ERROR
    naming it and the scheduler; the sweep goes on."""
    (result,) = _run(tmp_path, scored, {"x": 1}, PauseAtTwo())
    assert result.error is not None
    assert "cannot be paused by PauseAtTwo" in str(result.error)


def test_hyperband_pauses_and_resumes_trials_with_their_state(tmp_path: Path) -> None:
    """HyperBand's brackets pause trials at their milestones and resume the promising ones
    from their pause checkpoints: every trial's total matches the iterations it ran, so no
    resume lost or repeated state, and some trial was resumed."""
    hyperband = HyperBandScheduler(metric="total", mode="max", max_t=9, reduction_factor=3)
    # Five trials: the second bracket gets two, paused at its milestone until both are there.
    space = {"a": tune.grid_search([1, 2, 3, 4, 5])}
    results = _run(tmp_path, Accumulator, space, hyperband)
    for result, a in zip(results, [1, 2, 3, 4, 5], strict=True):
        assert result.error is None
        assert result.metrics["total"] == expected_total(result.metrics["training_iteration"], a)
    assert any(r.metrics["restored_from"] > 0 for r in results)
    assert max(r.metrics["training_iteration"] for r in results) > 1
