"""``RunConfig(callbacks=...)`` in real sweeps: Ray Tune's hooks once per event and in the
documented order through a failure, an error and a ``Tuner.restore``; a callback that raises
does not end the sweep; ``LoggerCallback``'s routing."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt.logger import LoggerCallback
from tune_ckpt.trial import Trial

from ._support import fail_once, run_config

STOP_AT = 6


def stop_at_six(trial_id: str, result: dict[str, Any]) -> bool:
    # A stop callable: one step per call, so every result reaches the driver before a
    # failure in the next step.
    return bool(result["training_iteration"] >= STOP_AT)


class FailsTwice(tune.Trainable):
    """Fails once before iteration 4 and once before iteration 5 (markers in its config)."""

    def setup(self, config: dict[str, Any]) -> None:
        self.total = 0.0

    def step(self) -> dict[str, Any]:
        upcoming = self.iteration + 1
        if upcoming == 4 and self.config.get("first"):
            fail_once(self.config["first"])
        if upcoming == 5 and self.config.get("second"):
            fail_once(self.config["second"])
        self.total += upcoming
        return {
            "score": float(upcoming),
            "nested": {"total": self.total},
            "weights": [upcoming, 2 * upcoming],
        }

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"total": self.total}

    def load_checkpoint(self, checkpoint: str | dict[str, Any]) -> None:
        assert isinstance(checkpoint, dict)
        self.total = checkpoint["total"]


class Recorder(tune.Callback):
    """Every hook call as a tuple: (hook, trial id or None, detail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, Any]] = []
        self.steps: list[tuple[str, int]] = []
        self.seen: list[tuple[int, Trial, list[Trial]]] = []

    def setup(self, stop: Any = None, num_samples: Any = None, **info: Any) -> None:
        self.calls.append(("setup", None, (num_samples, info.get("total_num_samples"))))

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self.steps.append(("begin", iteration))

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self.steps.append(("end", iteration))

    def _trial(self, hook: str, trial: Trial, trials: list[Trial], it: int, detail: Any) -> None:
        self.calls.append((hook, trial.trial_id, detail))
        self.seen.append((it, trial, trials))

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._trial("start", trial, trials, iteration, trial.status.value)

    def on_trial_restore(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._trial("restore", trial, trials, iteration, trial.iteration)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        self._trial("result", trial, trials, iteration, result["training_iteration"])

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: Trial, checkpoint: Any, **info: Any
    ) -> None:
        assert checkpoint.to_dict()["total"] > 0  # the committed checkpoint, readable
        self._trial("checkpoint", trial, trials, iteration, os.path.basename(checkpoint.path))

    def on_trial_save(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._trial("save", trial, trials, iteration, None)

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._trial("recover", trial, trials, iteration, trial.status.value)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._trial("error", trial, trials, iteration, trial.status.value)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._trial("complete", trial, trials, iteration, trial.status.value)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.calls.append(("end", None, sorted(t.status.value for t in trials)))


def _run_config(tmp_path: Path, callbacks: list[tune.Callback]) -> tune.RunConfig:
    return run_config(
        tmp_path,
        stop=stop_at_six,
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
        failure_config=tune.FailureConfig(max_failures=1),
        callbacks=callbacks,
    )


def _trial_calls(recorder: Recorder) -> list[tuple[str, Any]]:
    return [(hook, detail) for hook, _, detail in recorder.calls]


def test_hooks_once_per_event_in_order_through_failures_and_a_restore(tmp_path: Path) -> None:
    """Sweep 1: a failure (retried: recover, start, restore from checkpoint 2), then a second
    failure past max_failures=1 (error). Tuner.restore with new callbacks resumes the errored
    trial from checkpoint 4 (start, restore) to its end (complete). Every event once, in the
    documented order; the loop's steps bracket the trial hooks."""
    config = {"first": str(tmp_path / "first"), "second": str(tmp_path / "second")}
    first = Recorder()
    tune.Tuner(FailsTwice, param_space=config, run_config=_run_config(tmp_path, [first])).fit()
    assert _trial_calls(first) == [
        ("setup", (1, 1)),
        ("start", "RUNNING"),
        ("result", 1),
        ("result", 2),
        ("checkpoint", "checkpoint_000002"),
        ("save", None),
        ("result", 3),
        ("recover", "PENDING"),
        ("start", "RUNNING"),
        ("restore", 2),  # its results rolled back to the checkpoint it loaded
        ("result", 3),
        ("result", 4),
        ("checkpoint", "checkpoint_000004"),
        ("save", None),
        ("error", "ERROR"),
        ("end", ["ERROR"]),
    ]
    trial_id = first.calls[1][1]
    trial = first.seen[0][1]
    assert trial.local_path == str(tmp_path / "exp" / trial.trial_dir)
    assert trial.logdir == trial.local_path and trial.path == trial.local_path
    assert all(trials == [trial] for _, _, trials in first.seen)
    # Steps alternate begin(i), end(i + 1); each trial hook runs inside a step.
    kinds = [kind for kind, _ in first.steps]
    assert kinds == ["begin", "end"] * (len(kinds) // 2)
    assert [i for _, i in first.steps] == [i for n in range(len(kinds) // 2) for i in (n, n + 1)]
    begins = {i for kind, i in first.steps if kind == "begin"}
    assert all(it in begins for it, _, _ in first.seen)

    second = Recorder()
    tuner = tune.Tuner.restore(
        str(tmp_path / "exp"),
        FailsTwice,
        resume_errored=True,
        run_config=_run_config(tmp_path, [second]),
    )
    results = tuner.fit()
    assert results[0].metrics["training_iteration"] == STOP_AT
    assert second.calls[1][1] == trial_id
    assert _trial_calls(second) == [
        ("setup", (1, 1)),
        ("start", "RUNNING"),
        ("restore", 4),
        ("result", 5),
        ("result", 6),
        ("checkpoint", "checkpoint_000006"),
        ("save", None),
        ("complete", "TERMINATED"),
        ("end", ["TERMINATED"]),
    ]


def test_restore_without_run_config_runs_no_callbacks(tmp_path: Path) -> None:
    """Callbacks are not saved with the experiment: a restore given no run_config has
    none (and the stop callable, which is saved, still applies)."""
    config = {"first": str(tmp_path / "first"), "second": str(tmp_path / "second")}
    recorder = Recorder()
    rc = _run_config(tmp_path, [recorder])
    tune.Tuner(FailsTwice, param_space=config, run_config=rc).fit()
    calls = len(recorder.calls)
    tuner = tune.Tuner.restore(str(tmp_path / "exp"), FailsTwice, resume_errored=True)
    assert tuner.fit()[0].metrics["training_iteration"] == STOP_AT
    assert len(recorder.calls) == calls


def counts(config: dict[str, Any]) -> None:
    for step in range(3):
        if config["fail"] and step == 1:
            raise ValueError("this trial fails")
        tune.report({"step": step, "val": {"acc": step / 10}})


class Exploding(tune.Callback):
    def setup(self, **info: Any) -> None:
        raise RuntimeError("setup went wrong")

    def on_trial_result(self, **info: Any) -> None:
        raise KeyError("no such metric")


class Lines(LoggerCallback):
    """A user's logger: what it was told, per trial."""

    def __init__(self) -> None:
        self.lines: dict[str, list[Any]] = {}

    def _add(self, trial: Trial, line: Any) -> None:
        self.lines.setdefault(str(trial.config["fail"]), []).append(line)

    def log_trial_start(self, trial: Trial) -> None:
        self._add(trial, "start")

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        self._add(trial, result["val"]["acc"])

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        self._add(trial, ("end", failed))


def test_a_raising_callback_is_named_and_the_sweep_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback raising in setup and on every result is logged with its class and hook
    (once with the traceback, then counted); the callbacks after it still run, and the
    sweep ends as it would without it. A LoggerCallback gets log_trial_start/result/end,
    failed=True for the trial that errored."""
    lines = Lines()
    with caplog.at_level(logging.DEBUG, logger="tune_ckpt.driver.events"):
        results = tune.Tuner(
            counts,
            param_space={"fail": tune.grid_search([False, True])},
            tune_config=tune.TuneConfig(max_concurrent_trials=1),
            run_config=run_config(tmp_path, callbacks=[Exploding(), lines]),
        ).fit()
    assert sorted(r.error is None for r in results) == [False, True]
    assert lines.lines == {
        "False": ["start", 0.0, 0.1, 0.2, ("end", False)],
        "True": ["start", 0.0, ("end", True)],
    }
    ours = [r for r in caplog.records if r.name == "tune_ckpt.driver.events"]
    errors = [r for r in ours if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "callback Exploding.setup raised; the sweep goes on",
        "callback Exploding.on_trial_result raised; the sweep goes on",
    ]
    assert errors[1].exc_info is not None and errors[1].exc_info[0] is KeyError
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert warnings == ["callback Exploding.on_trial_result raised 4 times in this sweep"]


def test_tune_run_takes_callbacks(tmp_path: Path) -> None:
    lines = Lines()
    tune.run(
        counts, config={"fail": False}, storage_path=str(tmp_path), verbose=0, callbacks=[lines]
    )
    assert lines.lines == {"False": ["start", 0.0, 0.1, 0.2, ("end", False)]}


class AsksCheckpoint(tune.Callback):
    """Ray Tune's way of checkpointing from a callback: set ``should_checkpoint``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial,
                        result: dict[str, Any], **info: Any) -> None:  # fmt: skip
        if result["training_iteration"] == self.at:
            result[tune.result.SHOULD_CHECKPOINT] = True


@pytest.mark.parametrize("at", [3, STOP_AT])
def test_a_callback_setting_should_checkpoint_takes_a_checkpoint(tmp_path: Path, at: int) -> None:
    """No periodic checkpoints and none at the end: the only checkpoint is the one the
    callback asked for, of the result it saw (a stop callable runs one step per call),
    recorded even when that result is the trial's last."""
    rc = run_config(tmp_path, stop=stop_at_six, callbacks=[AsksCheckpoint(at)])
    grid = tune.Tuner(FailsTwice, run_config=rc).fit()
    folders = sorted(p.name for p in Path(grid[0].path).glob("checkpoint_*"))
    assert folders == [f"checkpoint_{at:06d}"]
    assert grid[0].checkpoint is not None
    assert grid[0].checkpoint.path.endswith(folders[0])
