"""A sweep driver for test_worker_sigterm_drain.py: one trial on the cluster at --address.

The trial accumulates ``total = sum(1..iteration)``, sleeps ``--step-seconds`` a step, and
appends ``<node id> <iteration>`` to ``--step-file`` after each step, so the test can see where
it runs and how far it got. It checkpoints only when the runner asks for it (no periodic
checkpoint), so a restore from a later iteration than 0 comes from an emergency checkpoint.
At the end the driver prints the trial's final metrics as one line, ``RESULT {json}``.

Run by the test as a plain process with the cluster's token in its environment.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import ray

import tune_ckpt as tune


class Counter(tune.Trainable):
    """Counts; its state is the iteration and the total."""

    def setup(self, config: dict[str, Any]) -> None:
        self.total = 0
        self.restored_from = 0

    def step(self) -> dict[str, Any]:
        iteration = self.iteration + 1
        time.sleep(self.config["step_seconds"])
        self.total += iteration
        node = ray.get_runtime_context().get_node_id()
        with open(self.config["step_file"], "a") as f:
            f.write(f"{node} {iteration}\n")
        return {"total": self.total, "restored_from": self.restored_from, "node_id": node}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
            json.dump({"total": self.total, "iteration": self.iteration}, f)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            state = json.load(f)
        self.total = state["total"]
        self.restored_from = state["iteration"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--storage-path", required=True)
    parser.add_argument("--step-file", required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--step-seconds", type=float, required=True)
    args = parser.parse_args()
    ray.init(address=args.address, configure_logging=False, log_to_driver=False)
    results = tune.Tuner(
        Counter,
        param_space={"step_file": args.step_file, "step_seconds": args.step_seconds},
        run_config=tune.RunConfig(
            name="drain",
            storage_path=args.storage_path,
            verbose=0,
            stop={"training_iteration": args.iterations},
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0),
            failure_config=tune.FailureConfig(max_failures=0),  # a failure ends the sweep
        ),
    ).fit()
    (result,) = results
    error = None if result.error is None else repr(result.error)
    print("RESULT " + json.dumps({"error": error, "metrics": result.metrics}), flush=True)


if __name__ == "__main__":
    main()
