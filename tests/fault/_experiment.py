"""A small finished experiment that restore tests edit into the state a crash leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tune_ckpt as tune

from ._trainables import Accumulator


def finished_experiment(
    tmp_path: Path, transfer: str = "auto"
) -> tuple[tune.Result, Path, list[dict[str, Any]]]:
    """A one-trial sweep run to iteration 6 with checkpoints 2, 4 and 6; its result, journal
    path and journal entries, ready to be edited into the state a crash leaves. ``transfer``
    is kept for the restore too."""
    run = tune.RunConfig(
        checkpoint_transfer=transfer,  # type: ignore[arg-type]
        storage_path=str(tmp_path),
        name="exp",
        verbose=0,
        stop={"training_iteration": 6},
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
    )
    (done,) = tune.Tuner(
        Accumulator, param_space={"marker_dir": str(tmp_path)}, run_config=run
    ).fit()
    journal = Path(done.path).parent / "experiment_journal.jsonl"
    return done, journal, [json.loads(line) for line in journal.read_text().splitlines()]


def result_iterations(trial_path: str) -> list[int]:
    """The training iterations in a trial's result.json, in order."""
    with open(Path(trial_path) / "result.json") as f:
        return [json.loads(line)["training_iteration"] for line in f if line.strip()]
