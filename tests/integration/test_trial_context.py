"""The trial context (``tune_ckpt.get_context()``, ``air.session.get_trial_*``, a class
trainable's ``trial_name``/``logdir``) as Ray Tune programs use it, before and after a
restore."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt.air import session
from tune_ckpt.checkpoint import Checkpoint

from ._support import fail_once, result_lines, run_config


def context_fn(config: dict[str, Any]) -> None:
    ctx = tune.get_context()
    start = 0
    checkpoint = session.get_checkpoint()
    if checkpoint:
        start = checkpoint.to_dict()["step"]
    for step in range(start, 3):
        if step == 1 and config.get("fail_marker"):
            fail_once(config["fail_marker"])
        with open(os.path.join(ctx.get_trial_dir(), "written_by_trial.txt"), "a") as f:
            f.write(f"{step}\n")
        resources = ctx.get_trial_resources()
        session.report(
            {
                "trial_id": ctx.get_trial_id(),
                "name": ctx.get_trial_name(),
                "dir": ctx.get_trial_dir(),
                "experiment": ctx.get_experiment_name(),
                "cpu": resources["CPU"],
                "cpu_required": resources.required_resources["CPU"],
                "air_id": session.get_trial_id(),
                "air_name": session.get_trial_name(),
                "air_dir": session.get_trial_dir(),
                "air_experiment": session.get_experiment_name(),
                "air_cpu": session.get_trial_resources()["CPU"],
            },
            checkpoint=Checkpoint.from_dict({"step": step + 1}),
        )


def test_function_trainable_sees_its_trial_before_and_after_restore(tmp_path: Path) -> None:
    """Every report carries the trial's id, name, folder (the trial folder itself, on local
    storage), experiment name and resources, and after the trial errored and the experiment
    was restored the resumed function sees the same values."""
    trainable = tune.with_resources(context_fn, {"cpu": 0.5})
    tuner = tune.Tuner(
        trainable,
        param_space={"fail_marker": str(tmp_path / "failed")},
        run_config=run_config(tmp_path),
    )
    first = tuner.fit()
    assert first[0].error is not None  # failed at step 1, after one checkpoint
    restored = tune.Tuner.restore(str(tmp_path / "exp"), trainable, resume_errored=True)
    result = restored.fit()[0]
    assert result.error is None
    trial_path = result.path
    rows = result_lines(trial_path)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row["trial_id"] == row["air_id"] == row[tune.result.TRIAL_ID]
        assert row["name"] == row["air_name"] == os.path.basename(trial_path)
        assert row["dir"] == row["air_dir"] == trial_path
        assert row["experiment"] == row["air_experiment"] == "exp"
        assert row["cpu"] == row["cpu_required"] == row["air_cpu"] == 0.5
    # The file written into the trial folder kept what the first run wrote (the failure came
    # before step 1 wrote), and the restored run appended to it.
    assert (Path(trial_path) / "written_by_trial.txt").read_text().split() == ["0", "1", "2"]


class ContextTrainable(tune.Trainable):
    def setup(self, config: dict[str, Any]) -> None:
        self.seen = {
            "setup_id": self.trial_id,
            "setup_name": self.trial_name,
            "setup_logdir": self.logdir,
            "setup_trial_dir": self.trial_dir,
            "setup_cpu": self.trial_resources["CPU"],
        }
        Path(self.logdir, "setup.txt").write_text(self.trial_name)

    def step(self) -> dict[str, Any]:
        return {**self.seen, "context_name": tune.get_context().get_trial_name()}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {}

    def load_checkpoint(self, checkpoint: Any) -> None:
        pass


@pytest.mark.parametrize("reuse_actors", [None, True])
def test_class_trainable_sees_its_trial_in_setup(tmp_path: Path, reuse_actors: Any) -> None:
    """``self.trial_name``, ``self.logdir`` and ``self.trial_dir`` are the trial's in
    ``setup``, also in an actor reused for a second trial."""
    grid = tune.Tuner(
        ContextTrainable,
        param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(reuse_actors=reuse_actors, max_concurrent_trials=1),
        run_config=run_config(tmp_path, stop={"training_iteration": 1}),
    ).fit()
    assert len({r.metrics["pid"] for r in grid}) == 1  # the second trial reused the actor
    for result in grid:
        name = os.path.basename(result.path)
        metrics = result.metrics
        assert metrics["setup_id"] == metrics["trial_id"]
        assert metrics["setup_name"] == metrics["context_name"] == name
        assert metrics["setup_logdir"] == metrics["setup_trial_dir"] == result.path
        assert metrics["setup_cpu"] == 1.0
        assert (Path(result.path) / "setup.txt").read_text() == name


def test_get_context_outside_a_trial_raises() -> None:
    """Outside a trainable there is no trial: a clear RuntimeError, not an AttributeError."""
    with pytest.raises(RuntimeError, match="inside a trainable"):
        tune.get_context()
    with pytest.raises(RuntimeError, match="inside a trainable"):
        session.get_trial_id()
