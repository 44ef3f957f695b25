"""A sweep driver run as its own process, so a test can kill it with SIGKILL.

Usage: python -m fault._driver STORAGE_PATH RAY_ADDRESS (with tests/ on PYTHONPATH)
"""

from __future__ import annotations

import sys

import ray

import tune_ckpt as tune
from tune_ckpt import air

from ._trainables import accumulate_fn

ITERATIONS = 30


def tuner(storage_path: str) -> tune.Tuner:
    return tune.Tuner(
        accumulate_fn,
        param_space={"a": tune.grid_search([1, 2, 3]), "iterations": ITERATIONS, "sleep": 0.1},
        run_config=air.RunConfig(
            storage_path=storage_path,
            name="exp",
            verbose=0,
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=4, num_to_keep=2),
        ),
    )


if __name__ == "__main__":
    ray.init(address=sys.argv[2], configure_logging=False)
    tuner(sys.argv[1]).fit()
