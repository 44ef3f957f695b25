"""A PBT sweep run as its own process, so a test can SIGKILL its driver mid-PBT.

Usage: python -m fault._pbt_driver STORAGE_PATH RAY_ADDRESS [synch] (with tests/ on
PYTHONPATH). ``synch``: the seeded synchronous sweep of ``synch_tuner``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import ray

import tune_ckpt as tune
from tune_ckpt.schedulers import PopulationBasedTraining

from ._pbt_trainables import Grower

ITERATIONS = 24


def pbt(**overrides: Any) -> PopulationBasedTraining:
    """The PBT of the PBT tests: ``rate`` mutated among four values, seeded; ``overrides``
    replace any argument."""
    args: dict[str, Any] = {
        "time_attr": "training_iteration",
        "metric": "value",
        "mode": "max",
        "perturbation_interval": 3,
        "hyperparam_mutations": {"rate": [1, 2, 5, 100]},
        "quantile_fraction": 0.5,
        "resample_probability": 0.0,
        "seed": 11,
        **overrides,
    }
    return PopulationBasedTraining(**args)


def synch_tuner(storage_path: str) -> tune.Tuner:
    """Synchronous PBT, four trials on two CPUs (so trials pause, wait and resume), seeded:
    its decisions depend on the scores only, so every run ends the same."""
    space: dict[str, Any] = {"rate": tune.grid_search([1, 2, 5, 100]), "sleep": 0.02}
    return tune.Tuner(
        Grower,
        param_space=space,
        tune_config=tune.TuneConfig(scheduler=pbt(resample_probability=0.25, synch=True, seed=23)),
        run_config=tune.RunConfig(
            storage_path=storage_path,
            name="exp",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


def tuner(storage_path: str) -> tune.Tuner:
    barrier = Path(storage_path) / "barrier"
    barrier.mkdir(parents=True, exist_ok=True)
    space: dict[str, Any] = {
        "rate": tune.grid_search([1, 100]),
        "barrier": str(barrier),
        "population": 2,
        "sleep": 0.05,
    }
    return tune.Tuner(
        Grower,
        param_space=space,
        tune_config=tune.TuneConfig(scheduler=pbt()),
        run_config=tune.RunConfig(
            storage_path=storage_path,
            name="exp",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


if __name__ == "__main__":
    ray.init(address=sys.argv[2], configure_logging=False)
    os.environ.setdefault("TUNE_CKPT_TEST", "1")
    synch = sys.argv[3:] == ["synch"]
    (synch_tuner if synch else tuner)(sys.argv[1]).fit()
