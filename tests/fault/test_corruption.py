"""Corrupt and half-written checkpoints are never loaded."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import tune_ckpt as tune
from tune_ckpt import air

from ._trainables import Accumulator, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")

ITERATIONS = 8


def _run(tmp_path: Path, fault: str, fault_at: int, transfer: str = "auto") -> tune.Result:
    (result,) = tune.Tuner(
        Accumulator,
        param_space={
            "marker_dir": str(tmp_path),
            "experiment_dir": str(tmp_path / "exp"),
            "fault": fault,
            "fault_at": fault_at,
        },
        run_config=air.RunConfig(
            storage_path=str(tmp_path),
            name="exp",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=3),
            failure_config=air.FailureConfig(max_failures=1),
            checkpoint_transfer=transfer,  # type: ignore[arg-type]
        ),
    ).fit()
    return result


@pytest.mark.parametrize("transfer", ["shared", "object_store"])
def test_truncated_checkpoint_is_skipped(
    tmp_path: Path, transfer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Checkpoint 6 truncated before a failure at 7: the trial restores from 3 instead."""
    caplog.set_level(logging.WARNING, logger="tune_ckpt")
    result = _run(tmp_path, "truncate_latest_then_raise", 7, transfer)
    assert result.error is None
    assert result.metrics["restored_from"] == 3
    assert result.metrics["total"] == expected_total(ITERATIONS)
    if transfer == "object_store":  # the driver verified it, so its log has the reason
        assert any(
            "checkpoint_000006" in r.getMessage() and "state.json" in r.getMessage()
            for r in caplog.records
        )


def test_crash_while_writing_checkpoint_leaves_nothing_to_restore(tmp_path: Path) -> None:
    """A worker killed halfway through saving checkpoint 6 resumes from 3; the half-written
    folder never becomes a checkpoint and is swept."""
    result = _run(tmp_path, "crash_in_save", 6)
    assert result.error is None
    assert result.metrics["restored_from"] == 3
    assert result.metrics["total"] == expected_total(ITERATIONS)
    names = sorted(os.listdir(result.path))
    assert not [n for n in names if n.startswith(".tmp_") or n.startswith(".trash_")]
    assert [n for n in names if n.startswith("checkpoint_")] == [
        "checkpoint_000003",
        "checkpoint_000006",
    ]
