"""Trainables of the CLI tests, importable by name (``cli._trainables:Counter``) in the
``tune-ckpt resume`` subprocess and in Ray's workers, which have tests/ on their path."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import tune_ckpt as tune


class Counter(tune.Trainable):
    """Counts iterations; ``score`` is count * lr and ``nested/half`` count / 2. Raises once
    at ``config["fail_at"]`` (a marker file next to ``config["marker"]`` remembers it did)."""

    def setup(self, config: dict[str, Any]) -> None:
        self.count = 0

    def step(self) -> dict[str, Any]:
        self.count += 1
        marker = self.config.get("marker")
        if self.count == self.config.get("fail_at") and marker and not os.path.exists(marker):
            Path(marker).touch()
            raise RuntimeError(f"injected failure at iteration {self.count}")
        return {"score": self.count * self.config["lr"], "nested": {"half": self.count / 2}}

    def save_checkpoint(self, checkpoint_dir: str) -> str:
        with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
            json.dump({"count": self.count, "padding": "x" * 100}, f)
        return checkpoint_dir

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            self.count = json.load(f)["count"]


def other_fn(config: dict[str, Any]) -> None:
    """A trainable with another name than the experiments were run with."""
    tune.report({"score": 0})
