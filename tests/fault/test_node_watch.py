"""A lost node noticed from its raylet, before Ray's health checks declare it dead, and the
runner restarting the node's trial on that notice alone."""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ray.cluster_utils import Cluster

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.driver import drains
from tune_ckpt.driver.node_watch import NodeWatch
from tune_ckpt.storage.manifest import MANIFEST_NAME, Manifest, digest

from ._trainables import Accumulator, expected_total


def _wait_for(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)
    return value


def test_a_removed_node_is_lost_while_ray_still_lists_it_alive(cluster: Cluster) -> None:
    doomed, kept = sorted(cluster.worker_nodes, key=lambda n: n.node_id)
    watch = NodeWatch()
    try:
        watch.watch([doomed.node_id, kept.node_id])
        _wait_for(lambda: watch.reached(doomed.node_id) and watch.reached(kept.node_id))
        cluster.remove_node(doomed, allow_graceful=False)
        found = _wait_for(watch.lost, timeout=30)
        assert found == {doomed.node_id}
        # Ray's own notice comes after ~15 s of failed health checks.
        assert doomed.node_id in drains.alive_nodes()
    finally:
        watch.close()


def _workers_of(raylet_pid: int) -> list[int]:
    """The Ray worker processes a raylet started (its children)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
            # A worker renames itself ("ray::IDLE", "ray::TrialActor...") once it runs.
            if parent == raylet_pid and (b"ray::" in command or b"default_worker" in command):
                pids.append(int(entry))
    return pids


def test_the_trial_of_a_lost_node_restarts_on_the_watch_alone(
    cluster: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker processes of the doomed node are stopped (SIGSTOP) before it is removed,
    so they never notice and Ray cannot fail the trial's call until its health checks
    declare the node dead; the watch's notice alone restarts the trial elsewhere, from its
    last checkpoint, counted as one failure."""
    node_files, step_dir = tmp_path / "nodes", tmp_path / "steps"
    node_files.mkdir()
    step_dir.mkdir()
    tuner = tune.Tuner(
        Accumulator,
        param_space={
            "a": tune.grid_search([1, 2]),
            "sleep": 0.05,
            "node_file": str(node_files),
            "step_dir": str(step_dir),
        },
        run_config=air.RunConfig(
            name="exp",
            storage_path=str(tmp_path / "storage"),
            verbose=0,
            stop={"training_iteration": 30},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=5),
            failure_config=air.FailureConfig(max_failures=2),
        ),
    )
    outcome: dict[str, Any] = {}
    stopped: list[int] = []
    caplog.set_level(logging.WARNING, logger="tune_ckpt")
    runner = threading.Thread(target=lambda: outcome.update(results=tuner.fit()))
    runner.start()
    try:

        def trial_zero_past_checkpoint() -> str | None:
            names = sorted(os.listdir(step_dir))
            if len(names) < 2:
                return None
            with contextlib.suppress(OSError, ValueError):
                if int((step_dir / names[0]).read_text()) >= 7:
                    return (node_files / names[0]).read_text()
            return None

        doomed_id = _wait_for(trial_zero_past_checkpoint)
        (doomed,) = [n for n in cluster.worker_nodes if n.node_id == doomed_id]
        raylet_pid = doomed.all_processes["raylet"][0].process.pid
        stopped = _workers_of(raylet_pid)
        assert stopped
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        cluster.remove_node(doomed, allow_graceful=False)
        cluster.add_node(num_cpus=1)
        runner.join(timeout=240)
        assert not runner.is_alive()
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    results = outcome["results"]
    first = results[0]
    assert first.error is None
    assert first.metrics["num_failures"] == 1
    assert first.metrics["restored_from"] >= 5
    assert first.metrics["node_id"] != doomed_id
    for result, a in zip(results, [1, 2], strict=True):
        assert result.metrics["total"] == expected_total(30, a)
    assert any(f"node {doomed_id} is lost" in r.getMessage() for r in caplog.records)


def _journaled_failures(journal: Path, trial_id: str) -> int:
    if not journal.exists():
        return 0
    failures = 0
    for line in journal.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("trial_id") == trial_id:
                failures = max(failures, int(entry.get("num_failures", 0)))
    return failures


@dataclass
class _ZombieRun:
    """A sweep whose trial ``a=1`` left a copy of its worker at iteration 10 (the fault
    ``zombie_commit``, waiting for ``release-zombie``) and whose node was then removed."""

    markers: Path
    experiment: Path
    runner: threading.Thread
    outcome: dict[str, Any]
    zombie: int = 0
    trial_id: str = ""
    doomed_id: str = ""

    def finish(self) -> list[Any]:
        self.runner.join(timeout=120)
        assert not self.runner.is_alive()
        return list(self.outcome["results"])

    def kill_zombie(self) -> None:
        if self.zombie:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.zombie, signal.SIGKILL)


def _start_zombie_run(
    cluster: Cluster, tmp_path: Path, iterations: int, **space: Any
) -> _ZombieRun:
    markers, node_files = tmp_path / "markers", tmp_path / "nodes"
    markers.mkdir()
    node_files.mkdir()
    tuner = tune.Tuner(
        Accumulator,
        param_space={
            "a": tune.grid_search([1, 2]),
            "sleep": 0.05,
            "fault": "zombie_commit",
            "fault_at": 10,
            "fault_a": 1,
            "marker_dir": str(markers),
            "node_file": str(node_files),
            **space,
        },
        run_config=air.RunConfig(
            name="exp",
            storage_path=str(tmp_path / "storage"),
            verbose=0,
            stop={"training_iteration": iterations},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=5),
            failure_config=air.FailureConfig(max_failures=1),
        ),
    )
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(results=tuner.fit()))
    run = _ZombieRun(markers, tmp_path / "storage" / "exp", runner, outcome)
    runner.start()
    try:
        (marker,) = _wait_for(lambda: glob.glob(str(markers / "*-zombie")))
        run.zombie = int(Path(marker).read_text())
        run.trial_id = os.path.basename(marker)[: -len("-zombie")]
        run.doomed_id = (node_files / run.trial_id).read_text()
        (doomed,) = [n for n in cluster.worker_nodes if n.node_id == run.doomed_id]
        cluster.remove_node(doomed, allow_graceful=False)
    except BaseException:
        run.kill_zombie()
        raise
    return run


def test_a_checkpoint_the_lost_worker_commits_after_the_loss_is_restored(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The watch notices a lost node before its worker dies, and that worker may still
    commit the checkpoint it was writing. Here a copy of the worker commits iteration 10 only
    after the driver has handled the loss (journaled the failure); the trial waits for a node
    with room, and when one joins it restarts from iteration 10, not 5: nothing committed is
    redone, and the metrics equal a fault-free run's."""
    # The other trial holds the other node's CPU until the commit is seen.
    run = _start_zombie_run(cluster, tmp_path, 40, hold_at=20, hold_a=2)
    try:
        journal = run.experiment / "experiment_journal.jsonl"
        _wait_for(lambda: _journaled_failures(journal, run.trial_id) == 1)
        (run.markers / "release-zombie").touch()
        _wait_for(lambda: glob.glob(str(run.experiment / f"*{run.trial_id}" / "checkpoint_000010")))
        cluster.add_node(num_cpus=1)
        (run.markers / "release-hold").touch()
        first, second = run.finish()
    finally:
        (run.markers / "release-hold").touch()
        run.kill_zombie()
    assert first.error is None
    assert first.metrics["num_failures"] == 1
    assert first.metrics["restored_from"] == 10
    assert first.metrics["node_id"] != run.doomed_id
    assert first.metrics["total"] == expected_total(40, 1)
    assert second.metrics["num_failures"] == 0
    assert second.metrics["total"] == expected_total(40, 2)


def test_a_lost_worker_that_commits_after_its_trial_restarted_is_fenced_off(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The copy of the lost worker is released only once the trial's new actor has committed
    iteration 10 itself. Its own commit of iteration 10 is refused (the trial's owner token
    changed when the new actor started), so the checkpoint the driver recorded stays: its
    manifest's digest is the journaled one and its results are the new actor's. Without the
    fence the old worker's commit replaced it."""
    run = _start_zombie_run(cluster, tmp_path, 30, save_marks=True)
    try:
        cluster.add_node(num_cpus=1)
        (trial_dir,) = _wait_for(lambda: glob.glob(str(run.experiment / f"*{run.trial_id}")))
        _wait_for(lambda: os.path.isdir(os.path.join(trial_dir, "checkpoint_000010")))
        (run.markers / "release-zombie").touch()
        _wait_for(lambda: (run.markers / f"saved-{run.zombie}-10").exists())
        # The copy's attempt is over once its temporary folder is gone (refused or renamed).
        _wait_for(lambda: not glob.glob(os.path.join(trial_dir, ".tmp_checkpoint_000010_*")))
        first, second = run.finish()
    finally:
        run.kill_zombie()
    assert first.error is None
    assert first.metrics["num_failures"] == 1
    assert first.metrics["restored_from"] == 5
    assert first.metrics["total"] == expected_total(30, 1)
    assert second.metrics["total"] == expected_total(30, 2)
    manifest = Path(trial_dir, "checkpoint_000010", MANIFEST_NAME).read_bytes()
    journaled = _journaled_digests(run.experiment / "experiment_journal.jsonl", run.trial_id)
    assert journaled[10] == digest(manifest)
    results = Manifest.from_bytes(manifest).results
    assert results and all(r["node_id"] != run.doomed_id for r in results)


def _journaled_digests(journal: Path, trial_id: str) -> dict[int, str]:
    """Iteration -> manifest digest of the trial's checkpoints, in its last journal entry."""
    digests: dict[int, str] = {}
    for line in journal.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("trial_id") == trial_id:
                digests = {c["iteration"]: c["manifest_digest"] for c in entry["checkpoints"]}
    return digests
