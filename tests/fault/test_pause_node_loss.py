"""A paused trial whose node goes while it waits: HyperBand paused it (a checkpoint, then its
resources went back, its worker process kept idle on that node); the node is removed and a
fresh one joins; when HyperBand resumes it, it runs on the other node from its pause
checkpoint, with its state intact and no failure counted (it was not running)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from ray.cluster_utils import Cluster

import tune_ckpt as tune
from tune_ckpt import journal
from tune_ckpt.schedulers import HyperBandScheduler
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import TrialStatus

from ._trainables import Accumulator, expected_total


class GatedHyperBand(HyperBandScheduler):
    """HyperBand that resumes no paused trial until the file ``gate`` exists, so the test
    can take the paused trial's node away first."""

    def __init__(self, gate: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    def choose_trial_to_run(self, runner: Any) -> Any:
        trial = super().choose_trial_to_run(runner)
        if trial is not None and trial.status == TrialStatus.PAUSED:
            return trial if os.path.exists(self.gate) else None
        return trial


def _paused(experiment: StorageLocation) -> dict[str, Any] | None:
    """The latest journal entry of a trial that is PAUSED now, if any."""
    if not experiment.exists(journal.JOURNAL_FILE):
        return None
    latest: dict[str, dict[str, Any]] = {}
    for entry in journal._entries(experiment)[0]:
        if "trial_id" in entry:
            latest[entry["trial_id"]] = entry
    paused = [e for e in latest.values() if e.get("status") == TrialStatus.PAUSED.value]
    return paused[0] if paused else None


def test_a_paused_trial_resumes_on_another_node_after_its_node_is_lost(
    cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "resume"
    scheduler = GatedHyperBand(str(gate), metric="total", mode="max", max_t=9, reduction_factor=3)
    tuner = tune.Tuner(
        Accumulator,
        # The best first: the first trial to pause is the best of its bracket, which HyperBand
        # resumes rather than stops.
        param_space={"a": tune.grid_search([5, 4, 3, 2, 1]), "sleep": 0.05},
        tune_config=tune.TuneConfig(scheduler=scheduler),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path / "storage"),
            name="exp",
            verbose=0,
            stop={"training_iteration": 9},
            failure_config=tune.FailureConfig(max_failures=2),
        ),
    )
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(results=tuner.fit()))
    runner.start()
    experiment = StorageLocation.resolve(str(tmp_path / "storage" / "exp"))
    deadline = time.monotonic() + 120
    paused = _paused(experiment)
    while paused is None:
        assert runner.is_alive(), "the sweep ended before any trial paused"
        assert time.monotonic() < deadline, "no trial paused in time"
        time.sleep(0.05)
        paused = _paused(experiment)
    doomed = paused["last_result"]["node_id"]
    paused_at = paused["last_result"]["training_iteration"]
    (node,) = [n for n in cluster.worker_nodes if n.node_id == doomed]
    cluster.remove_node(node, allow_graceful=False)
    cluster.add_node(num_cpus=1)
    gate.touch()
    runner.join(timeout=240)
    assert not runner.is_alive()
    results = outcome["results"]
    (moved,) = [r for r in results if r.metrics["trial_id"] == paused["trial_id"]]
    assert moved.error is None
    assert moved.metrics["training_iteration"] > paused_at  # HyperBand resumed it
    assert moved.metrics["restored_from"] == paused_at  # from its pause checkpoint
    assert moved.metrics["node_id"] != doomed
    assert moved.metrics["num_failures"] == 0
    for result, a in zip(results, [5, 4, 3, 2, 1], strict=True):
        assert result.error is None
        assert result.metrics["total"] == expected_total(result.metrics["training_iteration"], a)
