"""A reused actor starts its next trial clean: nothing of the previous trial leaks through
``TrialActor.reset`` (a preemption flag, the last result, an error still owed)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import ray

import tune_ckpt as tune
from tune_ckpt.actor import StepOutcome, TrialActor
from tune_ckpt.config import CheckpointConfig
from tune_ckpt.persistence import TrialContext
from tune_ckpt.storage.location import StorageLocation


class Named(tune.Trainable):
    """Reports its trial's name and its process; fails at ``fail_at`` if given."""

    def setup(self, config: dict[str, Any]) -> None:
        self.name = config["name"]
        self.fail_at = config.get("fail_at")

    def step(self) -> dict[str, Any]:
        if self.iteration + 1 == self.fail_at:
            raise RuntimeError(f"trial {self.name} fails")
        return {"name": self.name, "pid": os.getpid()}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"name": self.name}

    def load_checkpoint(self, checkpoint: Any) -> None:
        pass


def _context(root: Path, trial_id: str) -> TrialContext:
    # A stop threshold the trials never reach and a long batch: train_batch keeps stepping
    # until a step fails, so a failure after a good step is deferred to the next call.
    return TrialContext(
        trial_id,
        trial_id,
        StorageLocation.resolve(str(root)),
        "shared",
        "-",
        CheckpointConfig(),
        stop_thresholds={"training_iteration": 1000},
        batch_seconds=30.0,
    )


def _preempt(actor: Any, pid: int) -> StepOutcome:
    """SIGTERM the actor's process; the outcome of the first train() that reports it."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        outcome: StepOutcome = ray.get(actor.train.remote())
        if outcome.preempted:
            return outcome
    raise AssertionError("the actor never reported the SIGTERM as a preemption")


def test_reset_clears_preemption_last_result_and_deferred_error(tmp_path: Path) -> None:
    actor: Any = (
        ray.remote(TrialActor)
        .options(num_cpus=0)
        .remote(Named, {"name": "A"}, _context(tmp_path, "A"))
    )
    try:
        first: StepOutcome = ray.get(actor.train.remote())
        pid = first.result["pid"]
        preempted = _preempt(actor, pid)
        assert preempted.result["name"] == "A"

        # B on the same process: not preempted by A's SIGTERM.
        assert ray.get(actor.reset.remote({"name": "B"}, _context(tmp_path, "B"), False))
        outcome: StepOutcome = ray.get(actor.train.remote())
        assert not outcome.preempted
        assert (outcome.result["name"], outcome.result["pid"]) == ("B", pid)

        # C preempted before its first step reports no result, not B's last one.
        assert ray.get(actor.reset.remote({"name": "C"}, _context(tmp_path, "C"), False))
        assert _preempt(actor, pid).result == {}

        # D fails after a good step: the error is deferred to D's next call, never E's.
        context_d = _context(tmp_path, "D")
        assert ray.get(actor.reset.remote({"name": "D", "fail_at": 2}, context_d, False))
        assert [o.result["name"] for o in ray.get(actor.train_batch.remote())] == ["D"]
        assert ray.get(
            actor.reset.remote({"name": "E", "fail_at": 2}, _context(tmp_path, "E"), False)
        )
        batch: list[StepOutcome] = ray.get(actor.train_batch.remote())
        assert [(o.result["name"], o.result["pid"]) for o in batch] == [("E", pid)]
    finally:
        ray.kill(actor)
