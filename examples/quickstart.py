"""A small sweep that shows checkpoints, a crash and a restore.

A logistic-regression model (numpy, synthetic data, nothing downloaded) is trained with four
learning rates. Every trial checkpoints every 2 iterations and at the end, keeping its 2 best
checkpoints by validation accuracy. The worker process of one trial kills itself at iteration
5 on its first run, like a crashed or preempted machine; tune_ckpt restarts it in a new actor
from checkpoint_000004 instead of from scratch.

Run: pip install -e ".[examples]" then python examples/quickstart.py [--storage-path DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import ray

import tune_ckpt as tune
from tune_ckpt import air


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, 20))
    w = rng.normal(size=20)
    y = (x @ w + 0.5 * rng.normal(size=2000) > 0).astype(np.float64)
    return x, y


class LogisticRegression(tune.Trainable):
    """Full-batch gradient descent; one step() is 20 epochs."""

    def setup(self, config: dict) -> None:
        x, y = make_data()
        self.x_train, self.y_train = x[:1500], y[:1500]
        self.x_val, self.y_val = x[1500:], y[1500:]
        self.w = np.zeros(x.shape[1])

    def step(self) -> dict:
        crash_marker = self.config.get("crash_marker")
        if self.iteration == 4 and crash_marker and not os.path.exists(crash_marker):
            open(crash_marker, "w").close()
            print(f"trial {self.trial_id}: worker process crashing at iteration 5", flush=True)
            os._exit(1)  # a real crash: the worker process dies without cleanup
        for _ in range(20):
            p = 1 / (1 + np.exp(-self.x_train @ self.w))
            self.w -= self.config["lr"] * self.x_train.T @ (p - self.y_train) / len(self.y_train)
        p_val = 1 / (1 + np.exp(-self.x_val @ self.w))
        accuracy = float(((p_val > 0.5) == self.y_val).mean())
        loss = float(-np.mean(self.y_val * np.log(p_val + 1e-9)
                              + (1 - self.y_val) * np.log(1 - p_val + 1e-9)))  # fmt: skip
        return {"val_accuracy": accuracy, "val_loss": loss}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        np.save(os.path.join(checkpoint_dir, "weights.npy"), self.w)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        self.w = np.load(os.path.join(checkpoint_dir, "weights.npy"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage-path", default=None, help="default: a new temporary folder")
    args = parser.parse_args()
    storage = args.storage_path or tempfile.mkdtemp(prefix="tune_ckpt_quickstart_")
    # A local Ray instance of its own: ray.init() alone would join any cluster already
    # running on this machine (Tuner.fit calls it when Ray is not initialised yet).
    ray.init(address="local", include_dashboard=False)
    crash_marker = os.path.join(storage, "crashed-once")

    tuner = tune.Tuner(
        LogisticRegression,
        param_space={
            "lr": tune.grid_search([0.01, 0.1, 0.5, 2.0]),
            # The first trial to reach iteration 5 crashes once; the marker stops repeats.
            "crash_marker": crash_marker,
        },
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max"),
        run_config=air.RunConfig(
            name="quickstart",
            storage_path=storage,
            stop={"training_iteration": 8},
            checkpoint_config=air.CheckpointConfig(
                checkpoint_frequency=2,
                checkpoint_at_end=True,
                num_to_keep=2,
                checkpoint_score_attribute="val_accuracy",
            ),
            failure_config=air.FailureConfig(max_failures=1),
        ),
    )
    results = tuner.fit()

    best = results.get_best_result()
    print()
    print(f"best lr: {best.config['lr']}  val_accuracy: {best.metrics['val_accuracy']:.3f}")
    print(f"best trial's latest checkpoint: {best.checkpoint.path if best.checkpoint else None}")
    for result in results:
        restarts = result.metrics.get("num_failures", 0)
        kept = [m["training_iteration"] for _, m in result.best_checkpoints]
        print(
            f"  lr={result.config['lr']:<5} iterations={result.metrics['training_iteration']} "
            f"failures={restarts} checkpoints kept at iterations {sorted(kept)}"
        )


if __name__ == "__main__":
    main()
