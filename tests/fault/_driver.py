"""A sweep driver run as its own process, so a test can kill it with SIGKILL.

Usage: python -m fault._driver STORAGE_PATH RAY_ADDRESS [typed] (with tests/ on PYTHONPATH), or
:func:`kill_driver_mid_sweep` from a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray

import tune_ckpt as tune
from tune_ckpt import air

from ._trainables import accumulate_fn

ITERATIONS = 30
TESTS_DIR = str(Path(__file__).resolve().parents[1])


def typed_space(a: Any) -> dict[Any, Any]:
    """A space whose values JSON would change: a tuple, numpy scalars and an array, int keys.
    The trainable reports what it received (``describe_config``)."""
    return {
        "a": a,
        "iterations": ITERATIONS,
        "sleep": 0.1,
        "describe_config": True,
        "shape": (3, 4),
        "scale": np.float32(0.5),
        "weights": np.arange(3, dtype=np.int16),
        7: "an int key",
        "nested": {"betas": (0.9, 0.99), 2: np.int64(5)},
    }


def tuner(storage_path: str, typed: bool = False) -> tune.Tuner:
    space: dict[Any, Any] = {
        "a": tune.grid_search([1, 2, 3]),
        "iterations": ITERATIONS,
        "sleep": 0.1,
    }
    if typed:
        space = typed_space(tune.grid_search([1, 2, 3]))
    return tune.Tuner(
        accumulate_fn,
        param_space=space,
        run_config=air.RunConfig(
            storage_path=storage_path,
            name="exp",
            verbose=0,
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=4, num_to_keep=2),
        ),
    )


def committed_checkpoints(experiment: Path) -> dict[str, list[int]]:
    """Committed checkpoint iterations per trial folder."""
    found: dict[str, list[int]] = {}
    for trial in sorted(experiment.glob("accumulate_fn_*")):
        found[trial.name] = sorted(
            int(c.name.split("_")[1])
            for c in trial.glob("checkpoint_*")
            if (c / ".tune_ckpt_manifest.json").exists()
        )
    return found


def run_legacy(storage_path: str, resume: bool = False) -> tune.ExperimentAnalysis:
    """The same sweep as :func:`tuner`, through ``tune.run`` and its argument names."""
    return tune.run(
        accumulate_fn,
        config={"a": tune.grid_search([1, 2, 3]), "iterations": ITERATIONS, "sleep": 0.1},
        storage_path=storage_path,
        name="exp",
        verbose=0,
        checkpoint_freq=4,
        keep_checkpoints_num=2,
        resume=resume,
        metric="total",
        mode="max",
    )


def kill_driver_mid_sweep(
    storage: Path, signum: int, typed: bool = False, legacy: bool = False
) -> dict[str, list[int]]:
    """Run this driver in a subprocess on the caller's Ray instance and send it ``signum``
    once some trial has checkpoint 8; returns the checkpoints committed once it is gone.
    The experiment is ``storage / "exp"``; ``typed`` sweeps :func:`typed_space`; ``legacy``
    runs it through ``tune.run`` (:func:`run_legacy`)."""
    env = dict(os.environ)  # PYTHONPATH holds tests/ (tests/conftest.py)
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "fault._driver", str(storage), address]
    mode = ["typed"] if typed else ["legacy"] if legacy else []
    driver = subprocess.Popen(command + mode, env=env, cwd=TESTS_DIR)
    experiment = storage / "exp"
    deadline = time.monotonic() + 120
    try:
        while not any(8 in its for its in committed_checkpoints(experiment).values()):
            assert driver.poll() is None, "the driver ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared in time"
            time.sleep(0.05)
    finally:
        driver.send_signal(signum)
        driver.wait()
    # Ray stops a dead driver's actors a moment later; until then they may still write.
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, "the dead driver's actors did not stop in time"
        time.sleep(0.05)
    return committed_checkpoints(experiment)


if __name__ == "__main__":
    ray.init(address=sys.argv[2], configure_logging=False)
    if sys.argv[3:] == ["legacy"]:
        run_legacy(sys.argv[1])
    else:
        tuner(sys.argv[1], typed=sys.argv[3:] == ["typed"]).fit()
