"""Sweeps on storage that fails for real: a fault-injecting pyarrow filesystem around a real
local folder or moto's S3 server (tests/faultfs.py), switched while Ray's workers run.

Transient faults are ridden out; an outage during a restore is waited out, or fails the
trial without losing a checkpoint or a result; a full disk in the middle of a commit leaves
nothing half-committed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
import ray
from faultfs import FaultFS
from s3server import BUCKET, MotoServer

import tune_ckpt as tune
from tune_ckpt.errors import StorageFullError
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import MANIFEST_NAME

from ._trainables import Accumulator, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")

FAST_RETRY = tune.StorageRetry(max_elapsed_s=60, initial_s=0.01, max_s=0.2)
READS = ("open_input_stream", "open_input_file")


def _tuner(
    fs: pafs.FileSystem,
    root: str,
    param_space: dict[str, Any],
    retry: tune.StorageRetry = FAST_RETRY,
    transfer: str = "auto",
    max_failures: int = 1,
    iterations: int = 8,
) -> tune.Tuner:
    return tune.Tuner(
        Accumulator,
        param_space=param_space,
        run_config=tune.RunConfig(
            name="exp",
            storage_path=root,
            storage_filesystem=fs,
            storage_retry=retry,
            verbose=0,
            stop={"training_iteration": iterations},
            checkpoint_transfer=transfer,  # type: ignore[arg-type]
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
            failure_config=tune.FailureConfig(max_failures=max_failures),
        ),
    )


def _storage(fs: pafs.FileSystem, root: str) -> tuple[StorageLocation, CheckpointStore]:
    experiment = StorageLocation.resolve(root, fs).child("exp")
    return experiment, CheckpointStore(experiment)


def _trial_dirs(experiment: StorageLocation) -> list[str]:
    return sorted(
        i.path.rsplit("/", 1)[-1]
        for i in experiment.list_dir()
        if i.type == pafs.FileType.Directory and "Accumulator_" in i.path
    )


def _history(experiment: StorageLocation, trial_dir: str) -> list[tuple[int, int]]:
    lines = experiment.read_bytes(f"{trial_dir}/result.json").splitlines()
    return [(r["training_iteration"], r["total"]) for r in map(json.loads, lines)]


def _leftovers(experiment: StorageLocation, trial_dir: str) -> list[str]:
    """Temporary folders and checkpoint folders without a manifest."""
    found = []
    for info in experiment.list_dir(trial_dir):
        name = info.path.rsplit("/", 1)[-1]
        uncommitted = name.startswith("checkpoint_") and not experiment.is_file(
            f"{trial_dir}/{name}/{MANIFEST_NAME}"
        )
        if name.startswith((".tmp_", ".trash_")) or uncommitted:
            found.append(name)
    return found


def _in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _wait_for(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_transient_faults_on_s3_change_nothing(tmp_path: Path, moto_server: MotoServer) -> None:
    """10% of every storage call, on the driver and in the workers, fails with a throttle, a
    503, a timeout or a reset (seeded): the sweep ends with the same metrics, checkpoints and
    result histories as the same sweep on storage that never fails."""
    s3 = moto_server.filesystem(access_key="testing", secret_key="testing")
    space = {"a": tune.grid_search([1, 2, 3])}
    outcomes = {}
    for run, fraction in (("clean", 0.0), ("faulty", 0.1)):
        faults = FaultFS(s3, tmp_path / f"{run}.json")
        faults.set(fraction, seed=11, kinds=("slowdown", "http503", "timeout", "reset"))
        root = f"{BUCKET}/faults-{run}-{uuid.uuid4().hex[:8]}"
        results = _tuner(faults.fs, root, space).fit()
        faults.off()
        experiment, store = _storage(s3, root)
        outcomes[run] = {
            "totals": sorted(r.metrics["total"] for r in results),
            "errors": [r.error for r in results],
            "failures": [r.metrics["num_failures"] for r in results],
            "checkpoints": [
                [store.verify(c).iteration for c in store.list_committed(d)]
                for d in _trial_dirs(experiment)
            ],
            "histories": [_history(experiment, d) for d in _trial_dirs(experiment)],
        }
        if fraction:
            assert len(faults.injected()) >= 20  # the faults did happen, on every side
    assert outcomes["faulty"] == outcomes["clean"]
    assert outcomes["clean"]["totals"] == [expected_total(8, a) for a in (1, 2, 3)]
    assert outcomes["clean"]["checkpoints"] == [[2, 4, 6, 8]] * 3


@pytest.mark.parametrize("transfer", ["auto", "object_store"])
def test_outage_during_restore_is_waited_out(tmp_path: Path, transfer: str) -> None:
    """The trial fails at iteration 5; every read of its checkpoints then fails for about 3 s
    (the restore, on the worker or on the driver). The restore waits storage out under the
    retry policy and resumes from checkpoint 4 with its history whole."""
    faults = FaultFS(pafs.LocalFileSystem(), tmp_path / "control.json")
    faults.fail(methods=READS, path_contains="/checkpoint_", kinds=("timeout", "http503"))
    root = str(tmp_path / "storage")
    space = {"fault": "raise", "fault_at": 5, "marker_dir": str(tmp_path)}
    thread, outcome = _in_background(_tuner(faults.fs, root, space, transfer=transfer).fit)
    _wait_for(lambda: bool(faults.injected()))
    time.sleep(3.0)
    faults.off()
    thread.join(timeout=120)
    (result,) = outcome["value"]
    assert result.error is None
    assert result.metrics["restored_from"] == 4
    assert result.metrics["num_failures"] == 1
    assert result.metrics["total"] == expected_total(8)
    experiment, _ = _storage(pafs.LocalFileSystem(), root)
    (trial_dir,) = _trial_dirs(experiment)
    assert [i for i, _ in _history(experiment, trial_dir)] == list(range(1, 9))
    injected = faults.injected()
    assert injected[-1]["time"] - injected[0]["time"] >= 2.0  # reads retried through it


@pytest.mark.parametrize("transfer", ["auto", "object_store"])
def test_outage_past_the_retry_budget_fails_the_trial_and_loses_nothing(
    tmp_path: Path, transfer: str
) -> None:
    """Checkpoint reads keep failing past a 1 s retry budget: the restore fails the trial with
    the storage error (its last allowed failure), no checkpoint is deleted and no result
    truncated; once storage is back, Tuner.restore resumes it from checkpoint 4."""
    faults = FaultFS(pafs.LocalFileSystem(), tmp_path / "control.json")
    faults.fail(methods=READS, path_contains="/checkpoint_", kinds=("timeout",))
    root = str(tmp_path / "storage")
    space = {"fault": "raise", "fault_at": 5, "marker_dir": str(tmp_path)}
    budget = tune.StorageRetry(max_elapsed_s=1.0, initial_s=0.05, max_s=0.2)
    (failed,) = _tuner(faults.fs, root, space, retry=budget, transfer=transfer).fit()
    faults.off()
    assert failed.error is not None and "StorageUnavailableError" in str(failed.error)
    assert failed.metrics["num_failures"] == 2
    experiment, store = _storage(pafs.LocalFileSystem(), root)
    (trial_dir,) = _trial_dirs(experiment)
    assert [store.verify(c).iteration for c in store.list_committed(trial_dir)] == [2, 4]
    assert [i for i, _ in _history(experiment, trial_dir)] == list(range(1, 5))  # 5 raised

    (resumed,) = tune.Tuner.restore(
        str(tmp_path / "storage" / "exp"), Accumulator, resume_errored=True
    ).fit()
    assert resumed.error is None
    assert resumed.metrics["restored_from"] == 4
    assert resumed.metrics["total"] == expected_total(8)
    assert [i for i, _ in _history(experiment, trial_dir)] == list(range(1, 9))


def test_disk_full_in_a_workers_commit(tmp_path: Path) -> None:
    """No space left while the worker writes checkpoint 4: a permanent error, raised at once
    and counted as the trial's failure. Nothing of checkpoint 4 is listed, the trial resumes
    from checkpoint 2, and the sweep leaves no half-written folder behind."""
    faults = FaultFS(pafs.LocalFileSystem(), tmp_path / "control.json")
    faults.fail(
        methods=("open_output_stream",), path_contains="checkpoint_000004/", kinds=("enospc",)
    )
    root = str(tmp_path / "storage")
    thread, outcome = _in_background(_tuner(faults.fs, root, {}).fit)
    _wait_for(lambda: bool(faults.injected(kind="enospc")))
    faults.off()
    thread.join(timeout=120)
    (result,) = outcome["value"]
    assert result.error is None
    assert result.metrics["num_failures"] == 1
    assert result.metrics["total"] == expected_total(8)
    assert len(faults.injected(kind="enospc")) == 1  # not retried
    experiment, store = _storage(pafs.LocalFileSystem(), root)
    (trial_dir,) = _trial_dirs(experiment)
    assert [store.verify(c).iteration for c in store.list_committed(trial_dir)] == [2, 4, 6, 8]
    assert _leftovers(experiment, trial_dir) == []
    assert [i for i, _ in _history(experiment, trial_dir)] == list(range(1, 9))


def test_disk_full_in_the_drivers_commit_ends_the_sweep_cleanly(tmp_path: Path) -> None:
    """Checkpoints through the object store, and the driver's disk fills while it commits
    checkpoint 4 of one trial: the sweep ends, every actor is stopped, fit() raises that
    storage error, and Tuner.restore finishes every trial from its last checkpoint."""
    faults = FaultFS(pafs.LocalFileSystem(), tmp_path / "control.json")
    faults.fail(
        methods=("open_output_stream",), path_contains="checkpoint_000004/", kinds=("enospc",)
    )
    root = str(tmp_path / "storage")
    space = {"a": tune.grid_search([1, 2]), "sleep": 0.05}
    tuner = _tuner(faults.fs, root, space, transfer="object_store", iterations=10)
    thread, outcome = _in_background(tuner.fit)
    _wait_for(lambda: bool(faults.injected(kind="enospc")))
    # The disk stays full: the results, journal and lease writes of the shutdown fail too.
    faults.fail(methods=("open_output_stream", "open_append_stream"), kinds=("enospc",))
    thread.join(timeout=60)
    assert isinstance(outcome.get("error"), StorageFullError), outcome
    assert "checkpoint_000004" in str(outcome["error"])
    _wait_for(_all_actors_stopped, timeout=30)
    faults.off()
    experiment, store = _storage(pafs.LocalFileSystem(), root)
    for trial_dir in _trial_dirs(experiment):
        committed = [store.verify(c).iteration for c in store.list_committed(trial_dir)]
        assert 4 not in committed and committed in ([], [2])

    results = tune.Tuner.restore(str(tmp_path / "storage" / "exp"), Accumulator).fit()
    assert sorted(r.metrics["total"] for r in results) == [
        expected_total(10, 1),
        expected_total(10, 2),
    ]
    for trial_dir in _trial_dirs(experiment):
        assert _leftovers(experiment, trial_dir) == []
        assert [i for i, _ in _history(experiment, trial_dir)] == list(range(1, 11))


def _all_actors_stopped() -> bool:
    """Every CPU is free again: no trial actor (running or pooled) holds one."""
    return bool(ray.available_resources().get("CPU", 0.0) >= ray.cluster_resources()["CPU"])
