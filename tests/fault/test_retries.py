"""Retries: a trial that raises or whose worker dies resumes from its latest checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.errors import TrialError

from ._trainables import Accumulator, accumulate_fn, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")

ITERATIONS = 8


def _iterations(trial_path: str) -> list[int]:
    with open(os.path.join(trial_path, "result.json")) as f:
        return [json.loads(line)["training_iteration"] for line in f if line.strip()]


def _fit(trainable: Any, tmp_path: Path, space: dict[str, Any], **run: Any) -> tune.ResultGrid:
    run.setdefault("stop", {"training_iteration": ITERATIONS})
    run.setdefault("checkpoint_config", air.CheckpointConfig(checkpoint_frequency=3))
    return tune.Tuner(
        trainable,
        param_space={"marker_dir": str(tmp_path), **space},
        run_config=air.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0, **run),
    ).fit()


@pytest.mark.parametrize("fault", ["raise", "sigkill"])
def test_class_trial_resumes_from_latest_checkpoint(tmp_path: Path, fault: str) -> None:
    """A raise or a SIGKILLed worker at iteration 5 resumes at checkpoint 3, state intact."""
    results = _fit(
        Accumulator,
        tmp_path,
        {"fault": fault, "fault_at": 5},
        failure_config=air.FailureConfig(max_failures=1),
    )
    (result,) = results
    assert result.error is None
    assert result.metrics["total"] == expected_total(ITERATIONS)
    assert result.metrics["restored_from"] == 3
    assert result.metrics["num_failures"] == 1
    assert _iterations(result.path) == list(range(1, ITERATIONS + 1))


def test_function_trial_resumes_after_worker_exit(tmp_path: Path) -> None:
    """A function trainable whose process exits resumes from the checkpoint its callable gave."""
    results = _fit(
        accumulate_fn,
        tmp_path,
        {"fault": "exit", "fault_at": 5, "iterations": ITERATIONS},
        failure_config=air.FailureConfig(max_failures=1),
    )
    (result,) = results
    assert result.error is None
    assert result.metrics["total"] == expected_total(ITERATIONS)
    assert result.metrics["restored_from"] == 3
    assert _iterations(result.path) == list(range(1, ITERATIONS + 1))


def test_trial_past_budget_errors_and_others_finish(tmp_path: Path) -> None:
    """Past max_failures a trial ends in ERROR with its traceback; the other trial finishes."""
    results = _fit(
        Accumulator,
        tmp_path,
        {"fault": tune.grid_search(["raise_always", None]), "fault_at": 2},
        failure_config=air.FailureConfig(max_failures=1),
    )
    failed, healthy = results[0], results[1]
    assert isinstance(failed.error, TrialError)
    assert "injected failure" in str(failed.error)
    assert "step" in str(failed.error)  # the worker's traceback names the frame
    assert failed.metrics["num_failures"] == 2  # one restart allowed, the second failure ends it
    assert results.num_errors == 1
    assert healthy.error is None
    assert healthy.metrics["training_iteration"] == ITERATIONS


def test_unlimited_retries(tmp_path: Path) -> None:
    """max_failures=-1 keeps restarting: two faults at different iterations are survived."""
    first = _fit(
        Accumulator,
        tmp_path / "a",
        {"fault": "raise", "fault_at": tune.grid_search([2, 7])},
        failure_config=air.FailureConfig(max_failures=-1),
    )
    assert [r.error for r in first] == [None, None]
    assert [r.metrics["total"] for r in first] == [expected_total(ITERATIONS)] * 2


def test_fail_fast_stops_the_sweep(tmp_path: Path) -> None:
    """fail_fast=True ends every trial at the first error without raising from fit()."""
    results = _fit(
        Accumulator,
        tmp_path,
        {"fault": tune.grid_search(["raise", None]), "fault_at": 2, "sleep": 0.2},
        stop={"training_iteration": 50},
        failure_config=air.FailureConfig(fail_fast=True),
    )
    assert results[0].error is not None
    assert results[1].error is None
    # Stopped early: mid-run, or before its actor even started.
    assert results[1].metrics.get("training_iteration", 0) < 50


def test_fail_fast_raise_reraises(tmp_path: Path) -> None:
    """fail_fast='raise' re-raises the trial's error from fit()."""
    with pytest.raises(TrialError, match="injected failure"):
        _fit(
            Accumulator,
            tmp_path,
            {"fault": "raise", "fault_at": 2},
            failure_config=air.FailureConfig(fail_fast="raise"),
        )
