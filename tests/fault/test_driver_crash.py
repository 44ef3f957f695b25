"""A driver killed with SIGKILL mid-sweep; the experiment is moved and restored elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

import tune_ckpt as tune
from tune_ckpt.errors import ExperimentError

from ._driver import ITERATIONS, kill_driver_mid_sweep, typed_space
from ._experiment import finished_experiment
from ._trainables import Accumulator, accumulate_fn, describe_config, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _iterations(trial_path: str) -> list[int]:
    with open(os.path.join(trial_path, "result.json")) as f:
        return [json.loads(line)["training_iteration"] for line in f if line.strip()]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_driver_killed_then_restore_from_moved_folder(tmp_path: Path, signum: int) -> None:
    """Every trial ends with the metrics of a fault-free run, each resumed trial from the
    checkpoint storage held when the driver died, and all paths point at the new folder.
    SIGTERM unwinds the driver, which must not journal its running trials as finished."""
    at_kill = kill_driver_mid_sweep(tmp_path / "first", signum)
    moved = tmp_path / "second" / "exp-moved"
    moved.parent.mkdir()
    shutil.move(str(tmp_path / "first" / "exp"), str(moved))

    assert tune.Tuner.can_restore(str(moved))
    results = tune.Tuner.restore(str(moved), accumulate_fn).fit()

    assert len(results) == 3
    for result in results:
        assert result.error is None
        a = result.config["a"]
        assert result.metrics["total"] == expected_total(ITERATIONS, a)
        assert result.metrics["training_iteration"] == ITERATIONS
        assert _iterations(result.path) == list(range(1, ITERATIONS + 1))
        assert result.path.startswith(str(moved))
        assert result.checkpoint is not None
        assert result.checkpoint.path.startswith(str(moved))
        committed = at_kill[os.path.basename(result.path)]
        if result.metrics["restored_from"]:
            # Resumed from the newest checkpoint committed before the kill, not from scratch.
            assert result.metrics["restored_from"] == max(committed)
    assert any(r.metrics["restored_from"] for r in results)
    for folder in moved.rglob("*"):
        if folder.is_file() and folder.suffix in (".json", ".jsonl"):
            assert str(tmp_path / "first") not in folder.read_text()


def test_configs_round_trip_exactly_through_a_driver_crash(tmp_path: Path) -> None:
    """Tuples, numpy scalars and arrays and int keys reach the workers of a restored sweep,
    and its results, exactly as they were given (params.pkl), not as the journal's JSON."""
    kill_driver_mid_sweep(tmp_path, signal.SIGKILL, typed=True)
    results = tune.Tuner.restore(str(tmp_path / "exp"), accumulate_fn).fit()

    assert len(results) == 3
    for result in results:
        assert result.error is None
        expected = typed_space(result.config["a"])
        assert describe_config(result.config) == describe_config(expected)
        # What the restored worker itself received, reported from its last step.
        assert result.metrics["config_types"] == describe_config(expected)
        assert result.metrics["training_iteration"] == ITERATIONS
    assert any(r.metrics["restored_from"] for r in results)
    # params.json stays for people, beside the exact params.pkl.
    for result in results:
        with open(os.path.join(result.path, "params.json")) as f:
            assert json.load(f)["shape"] == [3, 4]
        assert os.path.exists(os.path.join(result.path, "params.pkl"))


def test_restore_errors(tmp_path: Path) -> None:
    """A path without an experiment, or another trainable's experiment, fails clearly."""
    with pytest.raises(ExperimentError, match="holds no tune_ckpt experiment"):
        tune.Tuner.restore(str(tmp_path / "nothing"), accumulate_fn)
    assert not tune.Tuner.can_restore(str(tmp_path / "nothing"))
    tune.Tuner(
        Accumulator,
        param_space={"marker_dir": str(tmp_path)},
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), name="exp", verbose=0, stop={"training_iteration": 1}
        ),
    ).fit()
    with pytest.raises(ExperimentError, match="'Accumulator', not 'accumulate_fn'"):
        tune.Tuner.restore(str(tmp_path / "exp"), accumulate_fn)


def test_restore_errored_trials(tmp_path: Path) -> None:
    """Errored trials are skipped by default, resumed from their checkpoint with
    resume_errored, or started over with restart_errored."""
    space = {"marker_dir": str(tmp_path), "fault": "raise", "fault_at": 5}
    run = tune.RunConfig(
        storage_path=str(tmp_path),
        name="exp",
        verbose=0,
        stop={"training_iteration": 6},
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
    )
    (errored,) = tune.Tuner(Accumulator, param_space=space, run_config=run).fit()
    assert errored.error is not None
    path = str(tmp_path / "exp")

    resume_copy, restart_copy = str(tmp_path / "resume"), str(tmp_path / "restart")
    shutil.copytree(path, resume_copy)
    shutil.copytree(path, restart_copy)

    (skipped,) = tune.Tuner.restore(path, Accumulator).fit()
    assert skipped.error is not None and skipped.metrics["training_iteration"] == 4
    # Goodput totals come back from the experiment, and a resumed trial adds to them.
    saving = errored.metrics["time_checkpointing_s"]
    assert skipped.metrics["time_checkpointing_s"] == saving > 0

    (resumed,) = tune.Tuner.restore(resume_copy, Accumulator, resume_errored=True).fit()
    assert resumed.error is None
    assert resumed.metrics["restored_from"] == 4  # the fault fired once; resumed at 4
    assert resumed.metrics["total"] == expected_total(6)
    assert resumed.metrics["time_checkpointing_s"] > saving  # and the save of iteration 6

    before = _files(Path(restart_copy))
    restarting = tune.Tuner.restore(restart_copy, Accumulator, restart_errored=True)
    # Nothing is deleted or truncated until fit() holds the experiment.
    assert _files(Path(restart_copy)) == before
    (restarted,) = restarting.fit()
    assert restarted.error is None
    assert restarted.metrics["restored_from"] == 0
    assert restarted.metrics["total"] == expected_total(6)
    assert _iterations(restarted.path) == list(range(1, 7))


def test_restore_rebuilds_history_from_checkpoint_manifests(tmp_path: Path) -> None:
    """The state a driver dying mid-sweep can leave: checkpoints 4 and 6 committed by the
    worker, the journal and result.json only up to 2. Restore uses checkpoint 6 (storage
    wins) and rebuilds results 3-6 from the manifests, so the history has no gap."""
    done, journal, lines = finished_experiment(tmp_path)
    last = lines[-1]
    last.update(
        status="RUNNING",
        checkpoints=[c for c in last["checkpoints"] if c["iteration"] == 2],
        last_result={"training_iteration": 2},
    )
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result_file = Path(done.path) / "result.json"
    kept = [
        line
        for line in result_file.read_text().splitlines()
        if json.loads(line)["training_iteration"] <= 2
    ]
    result_file.write_text("".join(line + "\n" for line in kept))

    (resumed,) = tune.Tuner.restore(str(journal.parent), Accumulator).fit()
    assert resumed.metrics["restored_from"] == 6
    assert _iterations(resumed.path) == list(range(1, 8))  # 1-2 kept, 3-6 rebuilt, 7 new
    assert resumed.metrics["total"] == expected_total(7)


def test_restore_skips_a_checkpoint_the_journal_names_but_storage_lost(tmp_path: Path) -> None:
    """The journal records checkpoints 2, 4 and 6 of an unfinished trial, but 6 is gone from
    storage: restore resumes from 4 and the history stays continuous."""
    done, journal, lines = finished_experiment(tmp_path)
    assert [c["iteration"] for c in lines[-1]["checkpoints"]] == [2, 4, 6]
    lines[-1]["status"] = "RUNNING"
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    shutil.rmtree(Path(done.path) / "checkpoint_000006")

    (resumed,) = tune.Tuner.restore(str(journal.parent), Accumulator).fit()
    assert resumed.metrics["restored_from"] == 4
    assert _iterations(resumed.path) == list(range(1, 7))
    assert resumed.metrics["total"] == expected_total(6)
