"""Node loss on a real multi-node Ray cluster, through both checkpoint transfer paths.

The cluster: a head without CPUs (the driver's node) and two 1-CPU worker nodes. Both
trials hold in their 14th step; the node running trial 0 is removed then and a fresh node
added; the trial must resume on another node from its last checkpoint (the 10th) with its
state intact, and its goodput must count the three steps it redoes as lost.

For the object-store path the storage is an in-memory filesystem that exists only in the
driver's process: a worker that tried to write it would write into its own empty copy, so
the checkpoints the driver holds can only have come through Ray's object store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import fsspec.implementations.memory
import pyarrow.fs as pafs
import pytest
from ray.cluster_utils import Cluster

import tune_ckpt as tune
from tune_ckpt import air, journal
from tune_ckpt.storage.location import StorageLocation

from ._trainables import Accumulator, expected_total

ITERATIONS = 40
HOLD_AT = 14  # both trials hold in this step while a node goes; the last checkpoint is 10


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def _check_goodput(results: tune.ResultGrid, experiment: StorageLocation) -> None:
    """The lost trial lost the step time between its checkpoint of iteration 10 and the
    last result the driver had when the node went (iteration 13), as the journal recorded
    both; nothing else of either trial was lost."""
    first, second = results[0].metrics, results[1].metrics
    entries, _ = journal._entries(experiment)
    (at_failure, *_) = [
        e for e in entries if e.get("trial_id") == first["trial_id"] and e.get("num_failures") == 1
    ]
    reached = at_failure["last_result"]
    assert reached["training_iteration"] == HOLD_AT - 1
    (checkpoint,) = [r for r in at_failure["checkpoints"] if r["iteration"] == 10]
    lost = reached["time_total_s"] - checkpoint["metrics"]["time_total_s"]
    assert lost >= 3 * 0.1  # three steps of at least their 0.1 s sleep
    assert first["time_lost_s"] == pytest.approx(lost)
    assert first["time_waiting_s"] > 0
    assert first["time_checkpointing_s"] > 0
    assert 0 < first["goodput"] < second["goodput"] <= 1
    assert (second["time_lost_s"], second["time_waiting_s"]) == (0, 0)


def _run_with_node_loss(
    cluster: Cluster,
    tmp_path: Path,
    storage: dict[str, Any],
    checkpoint_exists: Any,
    experiment: StorageLocation,
) -> tune.ResultGrid:
    node_files, markers = tmp_path / "nodes", tmp_path / "markers"
    node_files.mkdir()
    markers.mkdir()
    tuner = tune.Tuner(
        Accumulator,
        param_space={
            "a": tune.grid_search([1, 2]),
            "sleep": 0.1,
            "node_file": str(node_files),
            "fault": "hang",
            "fault_at": HOLD_AT,
            "marker_dir": str(markers),
        },
        run_config=air.RunConfig(
            name="exp",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=5),
            failure_config=air.FailureConfig(max_failures=2),
            **storage,
        ),
    )
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(results=tuner.fit()))
    runner.start()
    _wait_for(lambda: len([m for m in os.listdir(markers) if m.endswith(f"-{HOLD_AT}")]) == 2)
    assert checkpoint_exists(10)
    trial_files = sorted(os.listdir(node_files))
    with open(node_files / trial_files[0]) as f:
        doomed = f.read()
    (node,) = [n for n in cluster.worker_nodes if n.node_id == doomed]
    cluster.remove_node(node, allow_graceful=False)
    cluster.add_node(num_cpus=1)
    (markers / "release").touch()
    runner.join(timeout=240)
    assert not runner.is_alive()
    results: tune.ResultGrid = outcome["results"]
    first = results[0]
    assert first.error is None
    assert first.metrics["num_failures"] == 1
    assert first.metrics["restored_from"] == 10
    assert first.metrics["node_id"] != doomed
    for result, a in zip(results, [1, 2], strict=True):
        assert result.metrics["total"] == expected_total(ITERATIONS, a)
    _check_goodput(results, experiment)
    return results


def test_node_loss_shared_storage(cluster: Cluster, tmp_path: Path) -> None:
    """Workers persist to shared storage; the lost trial resumes elsewhere from it."""
    storage = tmp_path / "storage"
    trial_dirs = lambda: list((storage / "exp").glob("Accumulator_*"))  # noqa: E731
    results = _run_with_node_loss(
        cluster,
        tmp_path,
        {"storage_path": str(storage), "checkpoint_transfer": "shared"},
        lambda it: any((d / f"checkpoint_{it:06d}").is_dir() for d in trial_dirs()),
        StorageLocation.resolve(str(storage / "exp")),
    )
    assert results[0].checkpoint is not None
    assert results[0].checkpoint.path.startswith(str(storage))


def test_node_loss_object_store_transfer(cluster: Cluster, tmp_path: Path) -> None:
    """With storage only the driver can reach, 'auto' sends checkpoints through the object
    store both ways, and the lost trial still resumes from its last checkpoint."""
    memory = fsspec.implementations.memory.MemoryFileSystem()
    root = f"/driver-only-{tmp_path.name}"
    fs = pafs.PyFileSystem(pafs.FSSpecHandler(memory))
    location = StorageLocation.resolve(root, fs)

    def checkpoint_exists(iteration: int) -> bool:
        exp = location.child("exp")
        trials = [i.path for i in exp.list_dir() if "Accumulator_" in i.path]
        name = f"checkpoint_{iteration:06d}/.tune_ckpt_manifest.json"
        return any(memory.exists(f"{t}/{name}") for t in trials)

    results = _run_with_node_loss(
        cluster,
        tmp_path,
        {"storage_path": root, "storage_filesystem": fs, "checkpoint_transfer": "auto"},
        checkpoint_exists,
        location.child("exp"),
    )
    checkpoint = results[0].checkpoint
    assert checkpoint is not None and checkpoint.filesystem is fs
    assert checkpoint.to_dict()  # readable from the driver-only storage


def test_trial_waiting_for_lost_resources_is_reported(
    cluster: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both worker nodes are lost: the failed trial cannot be placed on what is left, and
    the driver says what it waits for instead of waiting in silence; a new node lets it
    resume from its checkpoint."""
    node_files = tmp_path / "nodes"
    node_files.mkdir()
    storage = tmp_path / "storage"
    tuner = tune.Tuner(
        Accumulator,
        param_space={"sleep": 0.1, "node_file": str(node_files)},
        run_config=air.RunConfig(
            name="exp",
            storage_path=str(storage),
            verbose=0,
            stop={"training_iteration": 20},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=5),
            failure_config=air.FailureConfig(max_failures=2),
        ),
    )
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(results=tuner.fit()))
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        runner.start()
        _wait_for(lambda: any(storage.glob("exp/Accumulator_*/checkpoint_000005")))
        for node in list(cluster.worker_nodes):
            cluster.remove_node(node, allow_graceful=False)
        _wait_for(lambda: any("waits for" in r.getMessage() for r in caplog.records))
        cluster.add_node(num_cpus=1)
        runner.join(timeout=120)
    assert not runner.is_alive()
    (result,) = outcome["results"]
    assert result.error is None
    assert result.metrics["total"] == expected_total(20)
    assert result.metrics["restored_from"] >= 5
    (waiting,) = [r.getMessage() for r in caplog.records if "waits for" in r.getMessage()]
    assert "{'CPU': 1.0}" in waiting and "{'CPU': 0.0}" in waiting
