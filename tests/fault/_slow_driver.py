"""A slow sweep driver run as its own process, for the tests of one driver per experiment.

Usage: python -m fault._slow_driver STORAGE_PATH RAY_ADDRESS (with tests/ on PYTHONPATH).
Two trials of ``accumulate_fn``, ITERATIONS steps of SLEEP_S each, a checkpoint every 2.
"""

from __future__ import annotations

import sys

import ray

import tune_ckpt as tune
from tune_ckpt import air

from ._trainables import accumulate_fn

ITERATIONS = 16
SLEEP_S = 0.5


def tuner(storage_path: str) -> tune.Tuner:
    return tune.Tuner(
        accumulate_fn,
        param_space={"a": tune.grid_search([1, 2]), "iterations": ITERATIONS, "sleep": SLEEP_S},
        run_config=air.RunConfig(
            storage_path=storage_path,
            name="exp",
            verbose=0,
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=2, num_to_keep=2),
        ),
    )


if __name__ == "__main__":
    ray.init(address=sys.argv[2], configure_logging=False)
    tuner(sys.argv[1]).fit()
