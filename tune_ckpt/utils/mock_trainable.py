"""``ray.tune.utils.mock_trainable``: the small deterministic trainable Ray Tune's examples
(``hyperband_example``, ...) import.

``MyTrainableClass`` reports ``episode_reward_mean = height * tanh(timestep / width)``, a
curve that rises to ``height`` at a speed set by ``width`` (both from the config, default 1),
and checkpoints its timestep as a JSON file. Config keys ``sleep`` (seconds per step),
``mock_error`` (raise from the second step on, until restored) and ``persistent_error``
(keep raising after a restore) exercise timing and failures.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from tune_ckpt.trainable import Trainable

MOCK_TRAINABLE_NAME = "mock_trainable"
MOCK_ERROR_KEY = "mock_error"
CHECKPOINT_FILE = "checkpoint"


class MyTrainableClass(Trainable):
    """A trainable whose reward follows ``height * tanh(timestep / width)``."""

    def setup(self, config: dict[str, Any]) -> None:
        self.timestep = 0
        self.restored = False
        self._sleep_s = float(config.get("sleep", 0))
        self._fail = bool(config.get(MOCK_ERROR_KEY, False))
        self._fail_after_restore = bool(config.get("persistent_error", False))

    def step(self) -> dict[str, Any]:
        # The first step always succeeds, so a failing trial has had a chance to checkpoint.
        if self._fail and self.timestep > 0 and (self._fail_after_restore or not self.restored):
            raise RuntimeError(f"failing on purpose at timestep {self.timestep}")
        if self._sleep_s > 0:
            time.sleep(self._sleep_s)
        self.timestep += 1
        width = self.config.get("width", 1)
        height = self.config.get("height", 1)
        return {"episode_reward_mean": height * math.tanh(self.timestep / width)}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, CHECKPOINT_FILE), "w") as f:
            json.dump({"timestep": self.timestep}, f)

    def load_checkpoint(self, checkpoint: str | dict[str, Any]) -> None:
        assert isinstance(checkpoint, str)  # save_checkpoint writes files
        with open(os.path.join(checkpoint, CHECKPOINT_FILE)) as f:
            self.timestep = int(json.load(f)["timestep"])
        self.restored = True
