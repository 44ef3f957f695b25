"""Nodes drained the way clouds and KubeRay take them away: Ray marks the node draining with
a deadline and nobody sends the worker SIGTERM. The driver notices within a second, saves
what it can before the deadline and moves the trials, counted as preemptions."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from metadata_server import MetadataServer
from ray.cluster_utils import Cluster

import tune_ckpt as tune
from tune_ckpt.driver import drains

from ._trainables import Accumulator, expected_total

ITERATIONS = 40


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _check_lost_time(tmp_path: Path, result: tune.Result) -> float:
    """The trial's ``time_lost_s`` is the step time between the last result the driver had
    when it moved the trial (as journaled then) and the checkpoint it resumed from (as in
    its final history). Returns it."""
    metrics = result.metrics
    journal = tmp_path / "storage" / "exp" / "experiment_journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    reached = next(
        e["last_result"]
        for e in entries
        if e.get("trial_id") == metrics["trial_id"]
        and e.get("num_preemptions", 0) + e.get("num_failures", 0) == 1
    )
    (restored,) = [
        r for r in result.history() if r["training_iteration"] == metrics["restored_from"]
    ]
    lost = max(0.0, reached["time_total_s"] - restored["time_total_s"])
    assert metrics["time_lost_s"] == pytest.approx(lost)
    assert metrics["time_waiting_s"] > 0
    assert 0 < metrics["goodput"] < 1
    return float(metrics["time_lost_s"])


def _sweep_with_drain(
    cluster: Cluster, tmp_path: Path, frequency: int, deadline_s: float
) -> tuple[tune.ResultGrid, int]:
    """Two trials on two 1-CPU nodes; once both have run 10 steps, the first one's node is
    drained with ``deadline_s`` and a fresh node joins; the drained node is removed at its
    deadline. Returns the results and the first trial's iteration when it was drained."""
    nodes, steps = tmp_path / "nodes", tmp_path / "steps"
    nodes.mkdir()
    steps.mkdir()
    tuner = tune.Tuner(
        Accumulator,
        param_space={
            "a": tune.grid_search([1, 2]),
            "sleep": 0.1,
            "node_file": str(nodes),
            "step_dir": str(steps),
        },
        run_config=tune.RunConfig(
            name="exp",
            storage_path=str(tmp_path / "storage"),
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=frequency),
        ),
    )
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(results=tuner.fit()))
    runner.start()
    _wait_for(lambda: len(os.listdir(nodes)) == 2)
    first = sorted(os.listdir(nodes))[0]
    doomed = (nodes / first).read_text()
    _wait_for(lambda: int((steps / first).read_text() or 0) >= 10)
    drained_at = int((steps / first).read_text())
    drains.drain_node(doomed, time.time() + deadline_s)
    cluster.add_node(num_cpus=1)
    time.sleep(deadline_s)
    (node,) = [n for n in cluster.worker_nodes if n.node_id == doomed]
    cluster.remove_node(node, allow_graceful=False)
    runner.join(timeout=120)
    assert not runner.is_alive()
    return outcome["results"], drained_at


def test_drain_saves_and_moves_the_trial_losing_nothing(cluster: Cluster, tmp_path: Path) -> None:
    """A 10 s deadline: the trial on the drained node takes an emergency checkpoint at the
    step it had reached (no periodic one exists yet), resumes on the new node from it, and
    counts a preemption, not a failure. Both trials end with fault-free totals."""
    results, drained_at = _sweep_with_drain(cluster, tmp_path, frequency=100, deadline_s=10)
    first = results[0]
    assert first.error is None
    assert first.metrics["num_failures"] == 0
    assert first.metrics["num_preemptions"] == 1
    assert drained_at <= first.metrics["restored_from"] < ITERATIONS
    for result, a in zip(results, [1, 2], strict=True):
        assert result.metrics["total"] == expected_total(ITERATIONS, a)
    # Goodput: nothing redone (less than any one step's time), the save was counted.
    steps = [r["time_this_iter_s"] for r in first.history()]
    assert _check_lost_time(tmp_path, first) < min(steps)
    assert first.metrics["time_checkpointing_s"] > 0
    second = results[1].metrics
    assert (second["time_lost_s"], second["time_waiting_s"]) == (0, 0)


def test_drain_too_short_to_save_resumes_from_the_last_checkpoint(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A 2 s deadline leaves no time for a save after the safety margin: the trial moves at
    once and resumes from its last periodic checkpoint, still a preemption."""
    results, drained_at = _sweep_with_drain(cluster, tmp_path, frequency=5, deadline_s=2)
    first = results[0]
    assert first.error is None
    assert first.metrics["num_failures"] == 0
    assert first.metrics["num_preemptions"] == 1
    restored = first.metrics["restored_from"]
    # A periodic checkpoint, from before the driver saw the drain: it reads drains once a
    # second, and a worker's batch of steps (up to 0.3 s) ends first, so up to 13 steps of
    # 0.1 s may follow the drain.
    assert restored % 5 == 0 and 5 <= restored <= drained_at + 13
    assert first.metrics["total"] == expected_total(ITERATIONS, 1)
    _check_lost_time(tmp_path, first)  # the steps since its periodic checkpoint


def test_spot_notice_drains_the_nodes_and_the_sweep_moves_its_trials(
    cluster: Cluster, tmp_path: Path
) -> None:
    """RunConfig(spot=...) puts a watcher on each worker node; the (fake, local) AWS
    metadata service announces an interruption in 25 s: the watchers drain their nodes
    10 s before it, and the sweep saves both trials and moves them to the nodes that join,
    losing no step and counting no failure."""
    steps = tmp_path / "steps"
    steps.mkdir()
    with MetadataServer("aws").running() as aws:
        tuner = tune.Tuner(
            Accumulator,
            param_space={"a": tune.grid_search([1, 2]), "sleep": 0.1, "step_dir": str(steps)},
            run_config=tune.RunConfig(
                name="exp",
                storage_path=str(tmp_path / "storage"),
                verbose=0,
                stop={"training_iteration": ITERATIONS},
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=100),
                spot=tune.SpotConfig(provider="aws", poll_s=0.2, margin_s=10, metadata_url=aws.url),
            ),
        )
        outcome: dict[str, Any] = {}
        runner = threading.Thread(target=lambda: outcome.update(results=tuner.fit()))
        runner.start()
        _wait_for(lambda: len(os.listdir(steps)) == 2)
        _wait_for(lambda: all(int((steps / t).read_text() or 0) >= 10 for t in os.listdir(steps)))
        aws.notice_at = float(int(time.time()) + 25)  # AWS gives whole seconds
        workers = {node.node_id for node in cluster.worker_nodes}
        _wait_for(lambda: set(drains.draining_nodes()) == workers, timeout=30)
        aws.notice_at = None  # the nodes that join now are not being taken away
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        runner.join(timeout=120)
    assert not runner.is_alive()
    for result, a in zip(outcome["results"], [1, 2], strict=True):
        assert result.error is None
        assert result.metrics["num_failures"] == 0
        assert result.metrics["num_preemptions"] == 1
        assert result.metrics["restored_from"] >= 10
        assert result.metrics["total"] == expected_total(ITERATIONS, a)


def test_drain_while_a_trial_restores_moves_it_without_a_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A trial's worker is killed at iteration 7; its replacement is still loading the
    checkpoint of iteration 5 (held by a gate) when its node drains. The trial moves at once,
    as it has nothing unsaved there, and restores on the other node from the same checkpoint:
    one failure, one preemption, no restart from scratch, the fault-free total."""
    markers, gate = tmp_path / "markers", tmp_path / "gate"
    markers.mkdir()
    gate.mkdir()
    tuner = tune.Tuner(
        Accumulator,
        param_space={
            # Longer than a worker's batch (0.3 s): one step per call, so the driver has every
            # step before the kill.
            "sleep": 0.35,
            "fault": "sigkill",
            "fault_at": 7,
            "marker_dir": str(markers),
            "restore_gate": str(gate),
        },
        run_config=tune.RunConfig(
            name="exp",
            storage_path=str(tmp_path / "storage"),
            verbose=0,
            stop={"training_iteration": 12},
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=5),
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(results=tuner.fit()))
    runner.start()
    _wait_for(lambda: len(os.listdir(gate)) == 1)  # the replacement is restoring
    (restoring,) = os.listdir(gate)
    doomed = (gate / restoring).read_text()
    drains.drain_node(doomed, time.time() + 30)
    # Moved: a third worker restores on the other node, while the second still waits.
    _wait_for(lambda: len(os.listdir(gate)) == 2)
    (moved,) = set(os.listdir(gate)) - {restoring}
    assert (gate / moved).read_text() != doomed
    (gate / "open").touch()
    runner.join(timeout=120)
    assert not runner.is_alive()
    (result,) = outcome["results"]
    assert result.error is None
    assert result.metrics["restored_from"] == 5
    assert result.metrics["node_id"] != doomed
    assert (result.metrics["num_failures"], result.metrics["num_preemptions"]) == (1, 1)
    assert result.metrics["total"] == expected_total(12)
    # Lost: iteration 6, the last result before the kill; waiting: the restores included.
    assert _check_lost_time(tmp_path, result) >= 0.1
