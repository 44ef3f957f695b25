"""``tune_ckpt.run(..., resume=True)`` after the driver running ``tune_ckpt.run`` was
SIGKILLed: the sweep continues from the checkpoints storage held."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ._driver import ITERATIONS, kill_driver_mid_sweep, run_legacy
from ._trainables import expected_total

pytestmark = pytest.mark.usefixtures("local_ray")


def test_run_resume_true_after_driver_sigkill(tmp_path: Path) -> None:
    at_kill = kill_driver_mid_sweep(tmp_path, signal.SIGKILL, legacy=True)
    analysis = run_legacy(str(tmp_path), resume=True)
    assert len(analysis.trials) == 3
    restored = 0
    for trial in analysis.trials:
        assert trial.error is None
        assert trial.metrics["total"] == expected_total(ITERATIONS, trial.config["a"])
        assert trial.metrics["training_iteration"] == ITERATIONS
        if trial.metrics["restored_from"]:
            restored += 1
            committed = at_kill[os.path.basename(trial.path)]
            assert trial.metrics["restored_from"] == max(committed)
    assert restored >= 1  # resumed, not started over
    assert analysis.best_config["a"] == 3
    assert analysis.best_result["total"] == expected_total(ITERATIONS, 3)
    # The best kept checkpoint by total: the last periodic one (every 4 iterations).
    assert analysis.best_checkpoint.to_dict()["iteration"] == ITERATIONS // 4 * 4
