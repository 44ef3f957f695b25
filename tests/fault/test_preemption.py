"""Preemption: SIGTERM to a worker takes an emergency checkpoint and reschedules the trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt import air

from ._trainables import Accumulator, accumulate_fn, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")

ITERATIONS = 8


def _fit(trainable: Any, tmp_path: Path, space: dict[str, Any]) -> tune.Result:
    (result,) = tune.Tuner(
        trainable,
        param_space={"marker_dir": str(tmp_path), "fault": "sigterm", "fault_at": 5, **space},
        run_config=air.RunConfig(
            storage_path=str(tmp_path),
            name="exp",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=3),
            failure_config=air.FailureConfig(max_failures=0),
        ),
    ).fit()
    return result


@pytest.mark.parametrize("trainable", [Accumulator, accumulate_fn], ids=["class", "function"])
def test_sigterm_checkpoints_and_reschedules(tmp_path: Path, trainable: Any) -> None:
    """SIGTERM at iteration 5 saves checkpoint 5 (not due by frequency) and resumes from it;
    the preemption is counted apart and does not use up max_failures=0."""
    result = _fit(trainable, tmp_path, {"iterations": ITERATIONS})
    assert result.error is None
    assert result.metrics["num_preemptions"] == 1
    assert result.metrics["num_failures"] == 0
    assert result.metrics["restored_from"] == 5
    assert result.metrics["total"] == expected_total(ITERATIONS)
    assert result.metrics["training_iteration"] == ITERATIONS
