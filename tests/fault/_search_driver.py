"""A sweep with a searcher or a scheduler, run as its own process so a test can SIGKILL it.

Usage: python -m fault._search_driver STORAGE_PATH RAY_ADDRESS optuna|asha (with tests/ on
PYTHONPATH), or :func:`kill_mid_sweep` from a test. One trial at a time, so an
uninterrupted run is deterministic and a restored one can be compared with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ray
from optuna.samplers import TPESampler

import tune_ckpt as tune
from tune_ckpt.schedulers import ASHAScheduler
from tune_ckpt.search.optuna import OptunaSearch

from ._trainables import accumulate_fn

TESTS_DIR = str(Path(__file__).resolve().parents[1])
TRIALS = 6
ITERATIONS = 6


def tuner(storage_path: str, kind: str) -> tune.Tuner:
    """``optuna``: a seeded TPE (model-based after 2 trials) suggesting ``a``; ``asha``: a
    grid where later trials are not always better, so ASHA stops some."""
    if kind == "optuna":
        space = {"a": tune.uniform(0, 1), "iterations": ITERATIONS, "sleep": 0.1}
        sampler = TPESampler(seed=3, n_startup_trials=2)
        extra = {"search_alg": OptunaSearch(sampler=sampler), "num_samples": TRIALS}
    else:
        space = {"a": tune.grid_search([3, 1, 4, 2, 5, 0.5]), "iterations": ITERATIONS}
        space["sleep"] = 0.1
        asha = ASHAScheduler(max_t=ITERATIONS, grace_period=1, reduction_factor=2)
        extra = {"scheduler": asha}
    return tune.Tuner(
        accumulate_fn,
        param_space=space,
        tune_config=tune.TuneConfig(metric="total", mode="max", max_concurrent_trials=1, **extra),
        run_config=tune.RunConfig(
            storage_path=storage_path,
            name="exp",
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
        ),
    )


def _third_trial_checkpointed(experiment: Path) -> bool:
    """The journal records a checkpoint of the third trial (in creation order). Not the
    checkpoint folder alone: the results of a checkpoint that storage holds but the journal
    never named are rebuilt on restore without reaching the scheduler (a known gap)."""
    journal = experiment / "experiment_journal.jsonl"
    if not journal.exists():
        return False
    for line in journal.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line being written
        if str(entry.get("trial_id", "")).endswith("_00002") and entry.get("checkpoints"):
            return True
    return False


def kill_mid_sweep(storage: Path, kind: str) -> None:
    """Run the sweep in a subprocess on the caller's Ray instance and SIGKILL it once its
    third trial has a checkpoint; returns once the dead driver's actors have stopped."""
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "fault._search_driver", str(storage), address, kind]
    driver = subprocess.Popen(command, env=dict(os.environ), cwd=TESTS_DIR)
    deadline = time.monotonic() + 120
    try:
        while not _third_trial_checkpointed(storage / "exp"):
            assert driver.poll() is None, "the driver ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared in time"
            time.sleep(0.02)
    finally:
        driver.kill()
        driver.wait()
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, "the dead driver's actors did not stop in time"
        time.sleep(0.05)


if __name__ == "__main__":
    ray.init(address=sys.argv[2], configure_logging=False)
    tuner(sys.argv[1], sys.argv[3]).fit()
