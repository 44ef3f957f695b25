"""Trainables for PBT tests: a number that only grows by the config's ``rate`` each step,
and checkpoints that say whose state they hold, so a restore of the wrong checkpoint is
visible in the results. ``barrier`` keeps trials that all hold an actor in step."""

from __future__ import annotations

import glob
import os
import time
from typing import Any

import tune_ckpt as tune


class Grower(tune.Trainable):
    """value += rate each step; a checkpoint holds the value, its trial and iteration."""

    def setup(self, config: dict[str, Any]) -> None:
        self.value = 0
        self.loaded: dict[str, Any] = {}

    def step(self) -> dict[str, Any]:
        _barrier(self.config, self.trial_id, self.iteration + 1)
        corrupt = self.config.get("corrupt_at")
        mine = self.config.get("corrupt_rate") == self.config["rate"]
        if mine and self.iteration + 1 == corrupt:
            _truncate_other_checkpoints(self.trial_dir, self.trial_id)
        time.sleep(self.config.get("sleep", 0.0))
        self.value += self.config["rate"]
        _completed(self.config, self.trial_id, self.iteration + 1)
        return {"value": self.value, "loaded": self.loaded, "rate": self.config["rate"]}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"value": self.value, "owner": self.trial_id, "iteration": self.iteration}

    def load_checkpoint(self, checkpoint: Any) -> None:
        self.value = checkpoint["value"]
        self.loaded = dict(checkpoint)


BARRIER_S = 3.0


def _barrier(config: dict[str, Any], trial_id: str, iteration: int) -> None:
    """With ``config["barrier"]`` (a folder): step ``iteration`` waits until every other
    trial of the ``population`` completed ``iteration - 1``, so trials that all hold an
    actor stay in step (microsecond steps would otherwise let one finish before another
    starts). After ``BARRIER_S`` it goes on: a peer may not be stepping because the driver
    waits for this trial (an exploiter waiting for this donor's checkpoint, whose request
    is queued behind this step), and waiting longer would only deadlock both."""
    folder = config.get("barrier")
    if not folder:
        return
    deadline = time.monotonic() + BARRIER_S
    while True:
        reached = {}
        for name in os.listdir(folder):
            if name.startswith("."):
                continue  # a write in progress
            with open(os.path.join(folder, name)) as f:
                text = f.read()
            reached[name] = int(text) if text else 0
        others = [v for k, v in reached.items() if k != trial_id]
        everyone = len(others) >= config["population"] - 1
        if iteration == 1 or (everyone and min(others, default=0) >= iteration - 1):
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)


def _completed(config: dict[str, Any], trial_id: str, iteration: int) -> None:
    folder = config.get("barrier")
    if folder:
        # Written whole, then renamed: a worker killed mid-write (the driver SIGKILL tests)
        # must not leave an empty file that reads as iteration 0 and stalls the barrier.
        temporary = os.path.join(folder, f".{trial_id}.tmp")
        with open(temporary, "w") as f:
            f.write(str(iteration))
        os.replace(temporary, os.path.join(folder, trial_id))


def _truncate_other_checkpoints(trial_dir: str, trial_id: str) -> None:
    """Damage, for real, every committed checkpoint of the other trials."""
    experiment = os.path.dirname(trial_dir.rstrip("/"))
    for folder in glob.glob(os.path.join(experiment, "*", "checkpoint_*")):
        if trial_id in folder:
            continue
        for name in os.listdir(folder):
            if not name.startswith("."):
                with open(os.path.join(folder, name), "r+b") as f:
                    f.truncate(1)


def grow_fn(config: dict[str, Any]) -> None:
    """Function API: never checkpoints on its own; passes a checkpoint callable."""
    start = tune.get_checkpoint()
    state = start.to_dict() if start is not None else {"value": 0, "iteration": 0}
    value = state["value"]
    loaded = dict(state) if start is not None else {}
    for iteration in range(state["iteration"] + 1, 1000):
        _barrier(config, tune.get_context().get_trial_id(), iteration)
        value += config["rate"]

        def snapshot(value: int = value, iteration: int = iteration) -> tune.Checkpoint:
            owner = tune.get_context().get_trial_id()
            return tune.Checkpoint.from_dict(
                {"value": value, "owner": owner, "iteration": iteration}
            )

        _completed(config, tune.get_context().get_trial_id(), iteration)
        tune.report({"value": value, "loaded": loaded, "rate": config["rate"]}, checkpoint=snapshot)
