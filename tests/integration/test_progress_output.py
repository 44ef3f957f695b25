"""What a sweep prints at each verbosity, on a non-terminal stream (pytest's capture)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.progress import STATUS_INTERVAL_ENV

from ._support import fail_once, run_config


class Counting(tune.Trainable):
    """Adds config["inc"] each step (0.05 s); with inc=2 it raises once at iteration 4 (the
    first time the marker file ``fail`` is missing)."""

    def setup(self, config: dict[str, Any]) -> None:
        self.total = 0

    def step(self) -> dict[str, Any]:
        time.sleep(0.05)
        if self.iteration == 3 and self.config["inc"] == 2 and self.config.get("fail"):
            fail_once(self.config["fail"])
        self.total += self.config["inc"]
        return {"total": self.total}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"total": self.total}

    def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.total = checkpoint["total"]


def sweep(tmp_path: Path, verbose: int) -> tune.ResultGrid:
    """Two trials of 6 iterations, checkpoints every 2; inc=2 fails once at iteration 4."""
    return tune.Tuner(
        Counting,
        param_space={
            "inc": tune.grid_search([1, 2]),
            "fail": str(tmp_path / "failed"),
        },
        tune_config=tune.TuneConfig(metric="total", mode="max"),
        run_config=run_config(
            tmp_path,
            verbose=verbose,
            stop={"training_iteration": 6},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=2),
            failure_config=air.FailureConfig(max_failures=1),
        ),
    ).fit()


@pytest.fixture
def fast_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATUS_INTERVAL_ENV, "0.2")


def failing_trial(results: tune.ResultGrid) -> tune.Result:
    (trial,) = [r for r in results if r.config["inc"] == 2]
    return trial


@pytest.mark.usefixtures("fast_status")
def test_verbose_0_prints_nothing_but_logs_the_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """verbose=0: no output of its own; the failure is a warning on the tune_ckpt logger."""
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        results = sweep(tmp_path, verbose=0)
    assert capsys.readouterr().out == ""
    failed = failing_trial(results).metrics["trial_id"]
    warnings = [r for r in caplog.records if r.name.startswith("tune_ckpt")]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert f"trial {failed} failed (1 so far)" in warnings[0].getMessage()
    assert "RuntimeError: injected failure (failed)" in warnings[0].getMessage()


@pytest.mark.usefixtures("fast_status")
def test_verbose_1_prints_trial_lines_status_blocks_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verbose=1 on a non-terminal: starts, the restore, ends, periodic status blocks and the
    summary naming the best trial and its checkpoint; never a line per result."""
    results = sweep(tmp_path, verbose=1)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines and all(line.startswith("[tune_ckpt] ") for line in lines)
    failed = failing_trial(results)
    failed_id = failed.metrics["trial_id"]
    restored = f"trial {failed_id} restored from {failed.path}/checkpoint_000002 (iteration 2)"
    assert restored in out
    for result in results:
        trial_id = result.metrics["trial_id"]
        assert f"trial {trial_id} started with {result.config}" in out
        assert (
            f"trial {trial_id} TERMINATED at iteration 6 total={result.metrics['total']}, "
            "latest checkpoint checkpoint_000006"
        ) in out
    assert any(" RUNNING" in line and "·" in line for line in lines), out  # a status block
    assert "2 trials in " in out and f"2 TERMINATED; results in {results.experiment_path}" in out
    best = results.get_best_result()
    assert f"best trial {best.metrics['trial_id']}: total=12 (max)" in out
    assert f"best trial's latest checkpoint: {best.path}/checkpoint_000006" in out
    assert "iteration 1:" not in out  # results only at verbose=2


def test_verbose_2_also_prints_every_result_and_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verbose=2 adds a line per result (the trainable's own metrics) and per checkpoint."""
    results = sweep(tmp_path, verbose=2)
    out = capsys.readouterr().out
    for result in results:
        trial_id = result.metrics["trial_id"]
        inc = result.config["inc"]
        for iteration in range(1, 7):
            assert f"trial {trial_id} iteration {iteration}: total={inc * iteration}\n" in out
        for iteration in (2, 4, 6):
            assert f"trial {trial_id} checkpoint {result.path}/checkpoint_{iteration:06d}" in out
    assert "num_failures" not in out and "time_total_s" not in out


def test_errored_trial_is_listed_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A trial that uses up its failures is an error log record and a summary line with its
    exception."""
    marker = tmp_path / "failed"
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        results = tune.Tuner(
            Counting,
            param_space={"inc": 2, "fail": str(marker)},
            run_config=run_config(tmp_path, verbose=1, stop={"training_iteration": 6}),
        ).fit()
    trial_id = results[0].metrics["trial_id"]
    out = capsys.readouterr().out
    assert os.path.exists(marker)
    assert f"trial {trial_id} errored after 1 failures: RuntimeError: injected failure" in out
    assert "1 ERROR" in out
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.name for r in errors] == ["tune_ckpt.progress"]


def test_bad_status_interval_fails_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad TUNE_CKPT_STATUS_INTERVAL_S is a ValueError naming it, raised by fit() before
    the experiment folder is created."""
    monkeypatch.setenv(STATUS_INTERVAL_ENV, "often")
    tuner = tune.Tuner(Counting, param_space={"inc": 1}, run_config=run_config(tmp_path, verbose=1))
    with pytest.raises(ValueError, match=f"{STATUS_INTERVAL_ENV}='often'"):
        tuner.fit()
    assert not (tmp_path / "exp").exists()


def nested_metrics(config: dict[str, Any]) -> None:
    for step in range(3):
        tune.report({"val": {"acc": 0.5 + step / 10}, "loss": 1.0 - step / 10})


def test_nested_metrics_flattened_and_a_missing_metric_warned_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """verbose=2 shows ``val/acc=``; a TuneConfig metric the results lack is one warning
    during the sweep (two trials, six results), naming what the results have."""
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        tune.Tuner(
            nested_metrics,
            param_space={"x": tune.grid_search([1, 2])},
            tune_config=tune.TuneConfig(metric="val/accuracy", mode="max"),
            run_config=run_config(tmp_path, verbose=2),
        ).fit()
    out = capsys.readouterr().out
    assert "iteration 3: val/acc=0.7, loss=0.8" in out
    warnings = [r.getMessage() for r in caplog.records if "TuneConfig(metric=" in r.getMessage()]
    assert len(warnings) == 1
    assert "'val/accuracy'" in warnings[0] and "'val/acc', 'loss'" in warnings[0]
