"""``TBXLoggerCallback`` in real sweeps, its event files read back with TensorBoard's own
loader (``EventMultiplexer``, what ``tensorboard --logdir <experiment>`` uses): one run per
trial, nested metrics flattened, each step once through a failure, hparams; on object
storage the files uploaded into the trial folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fsspec.implementations.memory
import pyarrow.fs as pafs
import pytest
from tensorboard.backend.event_processing import event_multiplexer
from tensorboard.plugins.hparams import plugin_data_pb2

import tune_ckpt as tune
from tune_ckpt.logger import TBXLoggerCallback

from ._support import run_config
from .test_callbacks import FailsTwice, stop_at_six


def _load(folder: Path) -> Any:
    mux = event_multiplexer.EventMultiplexer().AddRunsFromDirectory(str(folder))
    mux.Reload()
    return mux


def test_each_trial_is_a_run_with_flattened_scalars_once_per_step(tmp_path: Path) -> None:
    """Two trials, one of which fails after iteration 3 and restores checkpoint 2: both
    show steps 1..6 once with the values of the run that counts, histograms for the list
    metric, and their config in the HParams dashboard."""
    results = tune.Tuner(
        FailsTwice,
        param_space={"lr": tune.grid_search([0.1, 0.2]), "first": str(tmp_path / "first")},
        run_config=run_config(
            tmp_path,
            stop=stop_at_six,
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
            failure_config=tune.FailureConfig(max_failures=1),
            callbacks=[TBXLoggerCallback()],
        ),
    ).fit()
    assert sorted(r.metrics["num_failures"] for r in results) == [0, 1]

    mux = _load(tmp_path / "exp")
    runs = mux.Runs()
    assert sorted(runs) == sorted(os.path.basename(r.path) for r in results)
    hparams = mux.PluginRunToTagToContent("hparams")
    learning_rates = []
    for run, tags in runs.items():
        assert "ray/tune/nested/total" in tags["scalars"]
        assert "ray/tune/score" in tags["scalars"]
        assert "ray/tune/training_iteration" not in tags["scalars"]  # it is the step
        assert "ray/tune/weights" in tags["histograms"]
        totals = mux.Scalars(run, "ray/tune/nested/total")
        assert [e.step for e in totals] == [1, 2, 3, 4, 5, 6]
        assert [e.value for e in totals] == [1, 3, 6, 10, 15, 21]
        start = plugin_data_pb2.HParamsPluginData.FromString(
            hparams[run]["_hparams_/session_start_info"]
        ).session_start_info
        learning_rates.append(round(start.hparams["lr"].number_value, 6))
    assert sorted(learning_rates) == [0.1, 0.2]
    # The failed trial did write steps it redid: in an earlier event file, hidden.
    events = [
        n for r in results for n in os.listdir(r.path) if n.startswith("events.out.tfevents.")
    ]
    assert len(events) == 3


def counts(config: dict[str, Any]) -> None:
    for step in range(3):
        tune.report({"val": {"acc": step / 10}})


def test_on_object_storage_the_event_files_reach_the_trial_folder(tmp_path: Path) -> None:
    """Storage only the driver reaches (an in-memory filesystem): the logger writes into the
    trial's local folder on the driver, and its files are in the trial folder on storage
    once the trial ends, beside tune_ckpt's own result files."""
    memory = fsspec.implementations.memory.MemoryFileSystem()
    fs = pafs.PyFileSystem(pafs.FSSpecHandler(memory))
    root = f"/tbx-{tmp_path.name}"
    results = tune.Tuner(
        counts,
        run_config=tune.RunConfig(
            name="exp",
            storage_path=root,
            storage_filesystem=fs,
            verbose=0,
            callbacks=[TBXLoggerCallback()],
        ),
    ).fit()
    trial_folder = f"{root}/exp/{os.path.basename(results[0].path)}"
    names = [info.base_name for info in fs.get_file_info(pafs.FileSelector(trial_folder))]
    events = [n for n in names if n.startswith("events.out.tfevents.")]
    assert len(events) == 1 and "result.json" in names
    copy = tmp_path / "downloaded" / "trial"
    copy.mkdir(parents=True)
    with fs.open_input_stream(f"{trial_folder}/{events[0]}") as source:
        (copy / events[0]).write_bytes(source.readall())
    mux = _load(copy.parent)
    assert [e.value for e in mux.Scalars("trial", "ray/tune/val/acc")] == pytest.approx(
        [0.0, 0.1, 0.2]
    )
